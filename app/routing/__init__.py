"""Routing: eligibility, claiming tasks under a lease, heartbeats, release and submit."""
