"""`tessera simulate`: a marketplace in a box, driven over HTTP.

Clients post and fund jobs of several task types with gold, a population of annotators (honest,
drop-outs, drifters, spammers, bots) qualifies, claims, heartbeats, submits and appeals; clients
review by a rule, admins resolve appeals and run payouts. The run is a discrete-event simulation
on a seeded random generator; against a Tessera it starts itself the service's clock follows the
simulated time, so leases, active time and pay are measured as the service would measure them.
The report says whether the market worked: jobs completed, stalls, consensus accuracy against
the simulation's truth, who was removed, pay against the floor, the ledger and the webhooks.

Only `server` touches Tessera's internals (to start it and make the first administrator); the
rest talks to it through the public HTTP API.
"""
