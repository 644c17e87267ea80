"""CSV user import: reading, header mapping, validation, dry run, chunked bulk commit, error report.

The public API (views, the task and the benchmark use only these):

- :func:`import_job_upload` — store an upload as a job (caps, encoding, delimiter, guessed mapping)
- :func:`import_job_preview` — the dry run with a mapping: counts, samples, error report
- :func:`import_job_confirm` — start the import (in the request when small, else the task)
- :func:`import_job_run` — check and commit a confirmed job (the task body)
- :func:`import_job_cancel` — drop a job that was not confirmed
- :class:`UserImport` — the engine, for code that has CSV text rather than a job (the benchmark)
"""

from .engine import UserImport
from .fields import FIELDS, FIELDS_BY_KEY, mapping_errors, mapping_guess
from .plan import ImportPlan, ImportResult
from .reading import ImportFileError, csv_decode, csv_inspect, csv_sniff_delimiter
from .services import (
    ImportMappingError,
    ImportStateError,
    import_job_cancel,
    import_job_confirm,
    import_job_is_background,
    import_job_preview,
    import_job_run,
    import_job_upload,
)
from .validation import split_full_name

__all__ = [
    "FIELDS", "FIELDS_BY_KEY", "ImportFileError", "ImportMappingError", "ImportPlan", "ImportResult",
    "ImportStateError", "UserImport", "csv_decode", "csv_inspect", "csv_sniff_delimiter", "import_job_cancel",
    "import_job_confirm", "import_job_is_background", "import_job_preview", "import_job_run", "import_job_upload",
    "mapping_errors", "mapping_guess", "split_full_name",
]
