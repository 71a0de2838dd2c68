"""What every Label Studio tag converter shares: `TagConverter` (a control tag and the Tessera
control it stands for, in both directions), the object tags a control labels (`ObjectTarget`,
`BoundObject`, `ObjectNeed`), a tag's attributes as read (`TagAttributes`), an annotation's
results indexed by control (`Entries`) and the error of an unreadable result (`ResultError`).

The converters themselves are in `classification_tags` and `region_tags`; `tags` lists them.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

from app.label_schema.model import Control

Result = dict[str, Any]  # one entry of a Label Studio annotation's `result` list


@dataclass(frozen=True)
class ObjectTarget:
    """An object tag a control labels (`<Text name="review" value="$text"/>`)."""

    tag: str  # as written: "Text", "Image", "Audio", "List", ...
    name: str
    field: str | None  # None: a literal value (rating and number controls without a field)


Targets = tuple[ObjectTarget, ...]  # the objects of a control's toName, in order


@dataclass(frozen=True)
class BoundObject:
    """An object tag of a config being read, as a control's `toName` names it."""

    tag: str  # lower case
    shown: str  # as written
    name: str
    field: str | None  # None when `value` is literal content rather than "$field"
    video_sync: bool = False  # an Audio synced to a Video showing the same field
    text_key: str = "text"  # Paragraphs: the key of each paragraph's text (`textKey`)
    value_list: str | None = None  # an Image's `valueList="$pages"` (a multi-page document)


@dataclass(frozen=True)
class ObjectNeed:
    """An object tag a control needs in a generated config: its tag (None: any object showing
    the field will do, a Text when none does) and the field it shows; `video_sync` asks for a
    Video with an Audio synced to it (how Label Studio segments a video's timeline)."""

    tag: str | None
    field: str | None
    video_sync: bool = False
    name: str | None = None  # the object's own name, where the control is named after it (Chat)


class ResultError(Exception):
    """A Label Studio result Tessera cannot read; `index` is its position in the result list."""

    def __init__(self, index: int | None, detail: str) -> None:
        super().__init__(detail)
        self.index, self.detail = index, detail


@dataclass(frozen=True)
class TagAttributes:
    """A control tag being read: its attributes (names lower-cased, as Label Studio reads them
    regardless of case), how messages name it (`<Choices name="sentiment">`), and where its
    problems go (with the tag's line)."""

    attrs: Mapping[str, str]
    where: str
    report: Callable[[str], None]

    def get(self, key: str, default: str = "") -> str:
        return self.attrs.get(key, default)

    def flag(self, key: str, *, default: bool) -> bool | None:
        """`true`/`false` (any case); None (reported) for anything else."""
        raw = self.attrs.get(key)
        if raw is None:
            return default
        if raw.lower() in ("true", "false"):
            return raw.lower() == "true"
        self.report(f'{self.where}: {key}="{raw}" is neither true nor false')
        return None

    def number(self, key: str, *, integer: bool = False) -> float | None:
        """A finite number (a whole one with `integer`); None when absent or (reported) bad."""
        raw = self.attrs.get(key)
        if raw is None:
            return None
        try:
            value = int(raw) if integer else float(raw)
        except ValueError:
            kind = "a whole number" if integer else "a number"
            self.report(f'{self.where}: {key}="{raw}" is not {kind}')
            return None
        if value != value or value in (float("inf"), float("-inf")):
            self.report(f'{self.where}: {key}="{raw}" is not a finite number')
            return None
        return value


@dataclass
class Entries:
    """The results of one annotation, indexed for the converters reading them back."""

    results: Sequence[Any]
    by_from_name: dict[str, list[tuple[int, Result]]] = field(default_factory=dict)

    @classmethod
    def of(cls, results: Sequence[Any]) -> Entries:
        entries = cls(results)
        for index, entry in enumerate(results):
            if not isinstance(entry, Mapping):
                raise ResultError(index, "a result entry is an object")
            if entry.get("type") == "relation":
                # Relations between regions have no Tessera control yet: refused by name rather
                # than dropped, so nothing of an imported annotation is lost without a word.
                raise ResultError(
                    index,
                    "a relation between regions (Label Studio's Relations) cannot be kept; "
                    "remove relations from the annotation to import it",
                )
            name = entry.get("from_name")
            if not isinstance(name, str):
                raise ResultError(index, "a result entry needs a from_name")
            if not isinstance(entry.get("value"), Mapping):
                raise ResultError(index, "a result entry needs a value object")
            entries.by_from_name.setdefault(name, []).append((index, dict(entry)))
        return entries

    def of_control(self, name: str) -> list[tuple[int, Result]]:
        return self.by_from_name.get(name, [])


class TagConverter:
    """One Label Studio control tag and the Tessera control type it stands for."""

    tag: ClassVar[str]  # as Label Studio writes it: "RectangleLabels"
    control_type: ClassVar[str]  # the Tessera control: "boxes"
    # The child tag a control may contain ("Label", "Choice"), and whether each one is a label.
    child_tag: ClassVar[str | None] = None
    children_are_labels: ClassVar[bool] = True
    # Whether the children nest (Taxonomy's `<Choice>` inside `<Choice>`).
    nested_children: ClassVar[bool] = False
    # The object tags (lower case) the tag may label; empty: any.
    object_kinds: ClassVar[tuple[str, ...]] = ()
    # Region tags label parts of their object (spans, shapes, segments).
    is_region: ClassVar[bool] = False
    # How many objects `toName` may name.
    min_objects: ClassVar[int] = 1
    max_objects: ClassVar[int] = 1
    # Whether the control must name a payload field through the object it labels.
    needs_field: ClassVar[bool] = True
    # Whether `value="$field"` may load the labels from the task data.
    dynamic_labels: ClassVar[bool] = False
    # Whether the tag may be a per-region attribute (`perRegion="true"`), and as what.
    attribute_type: ClassVar[str | None] = None
    # Whether the control must be answered unless the tag says otherwise (None: region tags).
    required_default: ClassVar[bool | None] = None
    # Schema keys Label Studio spells otherwise, for messages: {"max": "maxRating"}.
    attribute_names: ClassVar[Mapping[str, str]] = {}
    # Whether a generated config writes a control tag (a Chat's messages are its object's own).
    writes_tag: ClassVar[bool] = True

    @property
    def kind(self) -> str:
        """The `type` of this tag's annotation results: the tag in lower case."""
        return self.tag.lower()

    @property
    def required_by_default(self) -> bool:
        # Label Studio's classification tags are optional unless they say required="true"; its
        # region tags have no such attribute and an empty list is a valid answer, so they keep
        # Tessera's default (the control must be present in the answer).
        return self.is_region if self.required_default is None else self.required_default

    # --- Label Studio -> Tessera

    def read(self, tag: TagAttributes, document: dict[str, Any]) -> None:
        """Add what is particular to this tag to the control `document` being built; report
        anything Tessera cannot express. The common attributes are already in `document`."""

    def bind(
        self, tag: TagAttributes, document: dict[str, Any], objects: Sequence[BoundObject]
    ) -> None:
        """Record in `document` the payload fields the objects of `toName` show: `field`, or
        `fields` for several objects."""
        fields = [o.field for o in objects]
        if any(f is None for f in fields):
            if self.needs_field:
                literal = next(o for o in objects if o.field is None)
                if literal.value_list is not None:
                    tag.report(
                        f'{tag.where} labels <{literal.shown} name="{literal.name}" '
                        f'valueList="{literal.value_list}">: multi-page documents (valueList) are '
                        'not supported; show one image per item (value="$field")'
                    )
                else:
                    tag.report(
                        f'{tag.where} labels <{literal.shown} name="{literal.name}">, whose value '
                        'is not a "$field" reference to the item payload'
                    )
            if len(objects) == 1:
                return
        if len(objects) == 1:
            document["field"] = fields[0]
        elif all(f is not None for f in fields):
            document["fields"] = fields
        else:
            tag.report(f'{tag.where}: every object of toName must show a "$field" of the item')

    def answer_value(
        self, control: Control, entries: list[tuple[int, Result]], payload: Mapping[str, Any]
    ) -> Any:
        """The answer value of `control` from its result entries (at least one); ResultError
        when they cannot be read."""
        raise NotImplementedError

    # --- Tessera -> Label Studio

    def objects_needed(self, control: Control) -> list[ObjectNeed]:
        """The object tags a generated config shows for `control`, in `toName` order."""
        fields = getattr(control, "fields", None) or [getattr(control, "field", None)]
        return [ObjectNeed(None, name) for name in fields]

    def config_attributes(self, control: Control) -> dict[str, str]:
        """The tag's attributes besides `name` and `toName`, in the order they are written."""
        return self.required_attribute(control)

    def required_attribute(self, control: Control) -> dict[str, str]:
        if control.required == self.required_by_default:
            return {}
        return {"required": "true" if control.required else "false"}

    def results(
        self,
        control: Control,
        value: Any,
        targets: Targets,
        payload: Mapping[str, Any] | None,
    ) -> list[Result]:
        """The annotation results for one (validated) answer `value` of `control`."""
        raise NotImplementedError

    def result(
        self, control: Control, targets: Targets, value: Result, region: int | None = None
    ) -> Result:
        return {
            "id": control.name if region is None else f"{control.name}-{region}",
            "from_name": control.name,
            "to_name": to_name(control, targets),
            "type": self.kind,
            "value": value,
        }

    def single(self, entries: list[tuple[int, Result]], control: Control) -> tuple[int, Result]:
        """The one entry a classification control has; ResultError for several."""
        if len(entries) > 1:
            raise ResultError(entries[1][0], f"{control.name!r} has more than one result")
        return entries[0]


def to_name(control: Control, targets: Targets) -> str:
    # Label Studio checks that a result's to_name is one of its control's toName objects; a
    # control with several (Pairwise, toName="a,b") names the first.
    return targets[0].name if targets else control.name


def value_key(entry: tuple[int, Result], key: str, kind: type | tuple[type, ...]) -> Any:
    """`value[key]` of a result entry, when it is a `kind` (never a boolean); ResultError else."""
    index, result = entry
    value = result["value"].get(key)
    if not isinstance(value, kind) or isinstance(value, bool):
        raise ResultError(index, f"value.{key} is missing or malformed")
    return value
