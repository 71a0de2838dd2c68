"""Qualification tests and skills: gate annotators before they touch client work.

- `skills`: the skill catalogue; `grants`: annotators' skill levels (earned or given, revoked).
- `annotators`: who is an annotator, their profile (reputation, tier) and bans from jobs.
- `question_bank`: tests and their questions with answer keys, as authors manage them.
- `attempts`: annotators taking tests (standing, start, submit, what they see), graded by
  `app.label_schema.grading` (how close an answer is to a key; gold at submit uses it too).
- `statistics`: how a test performs; `eligibility`: whether an annotator may work on a job.
- `endpoints` (HTTP) and `responses` (response bodies from what the services return).
"""
