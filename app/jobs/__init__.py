"""Jobs: label schemas, datasets, splitting into tasks, progress and export."""
