"""Overviews: what people see of the work as a whole. An annotator's own submitted, approved and
rejected work with its items, review and pay (`work`); admins' lists of annotators and clients
and clients' view of the appeals on their jobs (`people`)."""
