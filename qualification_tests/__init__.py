"""Qualification tests and skills: gate annotators before they touch client work."""
