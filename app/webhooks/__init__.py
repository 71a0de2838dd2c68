"""Client webhooks: endpoints, signed event delivery with retries, dead letters and replay."""
