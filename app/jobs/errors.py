"""The jobs domain's problem types: a job's lifecycle, its editable fields, its imports and
exports."""

from __future__ import annotations

from app.core.errors import Conflict, Forbidden, PayloadTooLarge, ValidationFailed


class TransitionNotAllowed(Conflict):
    """The job's status does not allow this move; `current_status` and `allowed_actions` say
    which moves it does allow."""

    slug, title = "transition-not-allowed", "Status transition not allowed"


class ResumeNeedsAdmin(Forbidden):
    """The job was paused because its client was suspended: only an administrator resumes it
    (reactivating the client does not)."""

    slug, title = "resume-needs-admin", "Only an administrator can resume this job"


class JobFrozen(Conflict):
    """The fields that define the work (schema, pricing, items per task, gold ratio, overlap
    minimum, external id field) change only while the job is a draft; `errors` point at the
    frozen fields."""

    slug, title = "job-frozen", "Field frozen after activation"


class LabelSchemaLocked(Conflict):
    """The label schema cannot change once items are imported (their gold answers and fields
    were checked against it)."""

    slug, title = "label-schema-locked", "Label schema locked by imported items"


class JobFinished(Conflict):
    """The job is completed or cancelled: it can no longer be changed or take items."""

    slug, title = "job-finished", "Job is finished"


class JobHasNoItems(Conflict):
    """A draft is activated only once it has at least one regular (non-gold) item."""

    slug, title = "job-has-no-items", "Job has no items"


class ExportFormatUnavailable(Conflict):
    """The job's label schema cannot be expressed in the export format asked for; another
    format can."""

    slug, title = "export-format-unavailable", "Export format unavailable for this job"


class StagedUploadGone(Conflict):
    """A background import found its staged upload gone; upload the file again."""

    slug, title = "staged-upload-gone", "Staged upload gone"


# --- problems a dataset import answers (besides a 422 `validation-failed` listing bad rows) ---


class TooManyUnusableLines(ValidationFailed):
    """More blank, empty or unparseable lines than TESSERA_IMPORT_MAX_UNUSABLE_LINES: the file
    is not a dataset (or not in the format named); nothing was imported."""

    slug, title = "too-many-unusable-lines", "Too many blank or unparseable lines"


class EmptyDataset(ValidationFailed):
    """The file holds no rows (an empty file or array, or a CSV header alone)."""

    slug, title = "empty-dataset", "The dataset has no rows"


class LabelSchemaChanged(Conflict):
    """The job's label schema changed while the file was being read and checked (its rows were
    checked against the old one); nothing was imported: upload it again."""

    slug, title = "label-schema-changed", "Label schema changed during the import"


class UnreadableFile(ValidationFailed):
    """The file itself cannot be parsed past some point (not just one bad row)."""

    slug, title = "unreadable-dataset", "The dataset file cannot be read"


class DecompressedTooLarge(PayloadTooLarge):
    """A gzip upload expands past TESSERA_MAX_DECOMPRESSED_BYTES."""

    slug, title = "decompressed-too-large", "Decompressed upload too large"


class ExternalIdFieldMissing(ValidationFailed):
    """The CSV header has no column of the declared external id field."""

    slug, title = "external-id-field-missing", "External id column missing"
