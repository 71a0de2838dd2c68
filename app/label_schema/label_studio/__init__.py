"""Label Studio interop (docs/label-schema.md, "Label Studio configs").

- `parse`: a Label Studio XML labeling config -> `LabelSchema` (what clients may send instead of
  a schema document).
- `config`: `LabelSchema` -> an XML config; `results`: one answer -> a Label Studio annotation's
  `result` list, so a job's answers can be loaded back into Label Studio.
- `tags`: one converter per Label Studio control tag, used by all three; supporting another tag
  means adding a converter there.
"""

from app.label_schema.label_studio.config import label_studio_config
from app.label_schema.label_studio.parse import label_schema_from_label_studio
from app.label_schema.label_studio.results import label_studio_result

__all__ = ["label_schema_from_label_studio", "label_studio_config", "label_studio_result"]
