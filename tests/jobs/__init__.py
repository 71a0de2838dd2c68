"""Tests for app.jobs: label schemas, answers, Label Studio interop."""
