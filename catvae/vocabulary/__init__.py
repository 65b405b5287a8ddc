"""The study's vocabulary, one definition each, read by the Snakefile, the `catvae` command and the library alike.

- `catvae.registry`: the generators (name, label, model class, conditional or per class).
- `catvae.vocabulary.arms`: classifier arm names (`Arm`: parse, format, kind, label, reference arm) and the
  study's arm list.
- `catvae.vocabulary.layout`: where every result file lives under `results/<dataset.name>/`, and the seed of a
  generator replicate.

Nothing here imports torch, so the Snakefile reads it when it plans the DAG. Sets of accepted values (enums) come
from the schema (`catvae.config.schema_enum`), not from constants written again here.
"""
