"""Synthetic member submissions for InsurShare, with a ground truth of their defects.

``generate(out_dir)`` writes, for each member, one premium-transaction file and one claim
snapshot file per quarter (in the member's own format: UTF-8 or GB18030 CSV, Parquet or
XLSX) with a manifest beside each, ``index.json`` (members, and the submissions in the order
they should be sent, with the verdict each must get) and ``ground_truth.csv`` (every
defective row and the exact rule ids the validator must report for it).

The flow: ``members`` (who, with ``lines`` and ``texts``) -> ``identities`` (the shared
population) -> ``policies`` (a book of policies and its transactions) -> ``claims`` (claims
and their snapshots) -> ``submissions`` with ``defects`` / ``defect_kinds`` (injected defects
and their truth) -> ``scenarios`` (resubmissions) -> ``writers`` / ``xlsx`` / ``outputs``
(files on disk) -> ``arrivals`` (when each file is sent). ``generator`` runs it all.
"""

from pipelines.generate.generator import GenerateResult, generate

__all__ = ["GenerateResult", "generate"]
