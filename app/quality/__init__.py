"""Quality, the people side: accuracy and speed tracking, reputation and tiers, the rules and
their enforcement, review, appeals and reports. How answers become a consensus is
`app.consensus`'s.
"""
