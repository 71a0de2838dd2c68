"""Label Studio interop (docs/label-schema.md, "Label Studio configs").

- `parse`: a Label Studio XML labeling config -> `LabelSchema` (what clients may send instead of
  a schema document), with the object tags each control labels (`read_label_studio_config`).
- `config`: `LabelSchema` -> an XML config; `results`: answers <-> the `result` lists of Label
  Studio annotations and predictions, so a job's answers can be loaded into Label Studio and
  Label Studio's exports loaded into a job.
- `tags`: one converter per Label Studio control tag, used by all of them (`classification_tags`,
  `region_tags`, on the shared `converter`); supporting another tag means adding a converter.
"""

from app.label_schema.label_studio.config import generated_targets, label_studio_config
from app.label_schema.label_studio.converter import ObjectTarget, Targets
from app.label_schema.label_studio.parse import (
    ParsedConfig,
    label_schema_from_label_studio,
    read_label_studio_config,
)
from app.label_schema.label_studio.results import answer_from_label_studio, label_studio_result

__all__ = [
    "ObjectTarget",
    "ParsedConfig",
    "Targets",
    "answer_from_label_studio",
    "generated_targets",
    "label_schema_from_label_studio",
    "label_studio_config",
    "label_studio_result",
    "read_label_studio_config",
]
