"""A member's submissions: upload, list, one record, its report, rule results and quarantined rows.

Each endpoint reads the record first and calls ``web.own`` with its member before anything else,
so another member's id answers the same 404 as a missing one. The upload streams the body to a
temporary file (``uploads.read_upload``, size-limited) and hands it to intake
(``uploads.submit_upload``) for the caller's own member: the member is never a field the caller
chooses. The same endpoints serve people as pages (``/submissions...``) and machines as JSON.
"""

from __future__ import annotations

import re
from typing import Annotated

from fastapi import Path as PathParam
from fastapi import Query, Request, Response
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse
from starlette.concurrency import run_in_threadpool

from pipelines.contracts import datasets
from pipelines.errors import InsurShareError, NotFound, SubmissionError
from pipelines.portal import policy, uploads, web
from pipelines.portal import submissions as subs
from pipelines.portal.identity import Principal

api = web.api_router(prefix="/submissions", tags=["submissions"])
pages = web.page_router()

SubmissionId = Annotated[str, PathParam(min_length=1, max_length=128)]
SUBMISSION_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")
MEDIA = {"csv": "text/csv; charset=utf-8",
         "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"}


# -- reading, shared by the API and the pages -----------------------------------------------------

def _visible(request: Request, caller: Principal, submission_id: str, endpoint: str) -> dict:
    """The record of ``submission_id`` if the caller may see it, else the portal's one 404."""
    request.state.access_object = submission_id[:128]
    if not SUBMISSION_ID.fullmatch(submission_id):       # no such id can exist: the same 404
        raise web.not_found()
    sub = subs.get_submission(web.settings_of(request), submission_id)
    web.own(caller, sub["member_id"] if sub else None, endpoint)
    if sub is None:
        raise web.not_found()
    return sub


def _scope(caller: Principal, endpoint: str) -> str | None:
    """Whose submissions a list shows: None (every member's) for roles that see all."""
    if policy.rule(endpoint).sees_every_member(caller.roles):
        return None
    if caller.member_id is None:
        raise web.Denied("Your account belongs to no member.", status=403,
                         hint="Ask the operator to attach it to your company.")
    return caller.member_id


def _with_report(sub: dict) -> None:
    if not subs.has_report(sub):
        raise NotFound(f"Submission {sub['submission_id']} was refused at intake, so it has no report, rule "
                       "results or quarantined rows.", hint="; ".join(sub["verdict_reasons"]) or
                       "Correct the file and upload it again.")


async def _upload(request: Request, caller: Principal) -> tuple[int, dict]:
    """Stream the upload in, receive it for the caller's member; (status, answer)."""
    settings = web.settings_of(request)
    if caller.member_id is None:
        raise SubmissionError("Your account belongs to no member, so it cannot submit files.",
                              hint="Ask the operator to attach it to your company.")
    upload = await uploads.read_upload(request, settings, settings.portal_max_upload_bytes)
    try:
        web.check_form_csrf(request, upload.fields)
        # a form's empty field (the page's optional controls and encoding) means "not given"
        upload.fields = {k: v for k, v in upload.fields.items() if v.strip()}
        got = await run_in_threadpool(uploads.submit_upload, settings, upload, caller.member_id)
    finally:
        upload.discard()
    sub = got.submission
    request.state.access_object = sub.submission_id
    answer = {"submission_id": sub.submission_id, "status": sub.status, "member_id": sub.member_id,
              "dataset": sub.dataset, "period": sub.period, "version": sub.version,
              "created": got.created, "supersedes": got.supersedes,
              "message": (f"Received as {sub.submission_id}; it is checked and published by the next "
                          "ingestion run." if got.created else
                          f"Already received: these bytes are {sub.submission_id}; nothing new was recorded.")}
    return (201 if got.created else 200), answer


# -- the API --------------------------------------------------------------------------------------

@api.post("", name="submissions.upload", status_code=201, summary="Upload a submission",
          responses={200: {"description": "The same bytes were already received (no-op)"},
                     413: {"description": "Larger than the portal's upload limit; nothing kept"},
                     422: {"description": "The manifest or the file cannot be accepted"}})
async def upload(request: Request, caller: web.Caller) -> JSONResponse:
    """Multipart form: the file (field ``file``) and the manifest fields ``dataset``, ``period``,
    ``rows``, control totals as ``control.<column>`` (or ``controls`` JSON), optionally
    ``contract_version`` and ``encoding``. The member is the caller's own."""
    status, answer = await _upload(request, caller)
    return JSONResponse(answer, status_code=status)


@api.get("", name="submissions.list", summary="List submissions")
def list_(request: Request, caller: web.Caller,
          limit: Annotated[int, Query(ge=1, le=subs.LIST_LIMIT)] = 200) -> dict:
    """Your member's submissions (the regulator and the operator: every member's), newest first,
    with status, verdict, row counts and timeliness."""
    rows = subs.list_submissions(web.settings_of(request), _scope(caller, "submissions.list"), limit=limit)
    request.state.access_rows = len(rows)
    return {"submissions": rows}


@api.get("/{submission_id}", name="submissions.show", summary="One submission")
def show(request: Request, caller: web.Caller, submission_id: SubmissionId) -> dict:
    """The submission's record: status, verdict and its reasons, counts, timeliness."""
    return _visible(request, caller, submission_id, "submissions.show")


@api.get("/{submission_id}/report", name="submissions.report", summary="The submission's HTML report",
         response_class=HTMLResponse)
def report(request: Request, caller: web.Caller, submission_id: SubmissionId) -> HTMLResponse:
    """The quality report the platform writes for the submission (built now if not yet written)."""
    sub = _visible(request, caller, submission_id, "submissions.report")
    _with_report(sub)
    page = subs.report_path(web.settings_of(request), sub)
    return HTMLResponse(page.read_text(encoding="utf-8"))


@api.get("/{submission_id}/rules", name="submissions.rules", summary="The submission's rule results")
def rules(request: Request, caller: web.Caller, submission_id: SubmissionId) -> dict:
    """Each rule checked: kind, severity, rows checked and rows failed."""
    sub = _visible(request, caller, submission_id, "submissions.rules")
    _with_report(sub)
    results = subs.rule_results(web.settings_of(request), submission_id)
    request.state.access_rows = len(results)
    return {"submission_id": submission_id, "rules": results}


@api.get("/{submission_id}/quarantine", name="submissions.quarantine", summary="Quarantined rows (CSV/XLSX)",
         response_class=Response, responses={200: {"content": {MEDIA["csv"]: {}, MEDIA["xlsx"]: {}}}})
def quarantine(request: Request, caller: web.Caller, submission_id: SubmissionId,
               format: Annotated[str, Query(pattern="^(csv|xlsx)$")] = "csv") -> Response:  # noqa: A002
    """The rows that broke error rules, with the rule ids, reasons and how to fix them, to correct
    and send again. Text a spreadsheet would run as a formula is written with a leading '."""
    return _quarantine(request, caller, submission_id, format)


@api.get("/{submission_id}/quarantine.{fmt}", name="submissions.quarantine", include_in_schema=False)
def quarantine_file(request: Request, caller: web.Caller, submission_id: SubmissionId, fmt: str) -> Response:
    """The report's own links (``quarantine.csv`` beside ``report``)."""
    return _quarantine(request, caller, submission_id, fmt)


def _quarantine(request: Request, caller: Principal, submission_id: str, fmt: str) -> Response:
    sub = _visible(request, caller, submission_id, "submissions.quarantine")
    _with_report(sub)
    body, count = subs.quarantine_file(web.settings_of(request), sub, fmt)
    request.state.access_rows = count
    return Response(body, media_type=MEDIA[fmt], headers={
        "Content-Disposition": f'attachment; filename="{submission_id}-quarantine.{fmt}"'})


# -- the pages ------------------------------------------------------------------------------------

@pages.get("/submissions", name="submissions.list")
def list_page(request: Request, caller: web.Caller) -> Response:
    rows = subs.list_submissions(web.settings_of(request), _scope(caller, "submissions.list"))
    request.state.access_rows = len(rows)
    return web.render(request, "submissions.html.j2", submissions=rows)


@pages.get("/submissions/new", name="submissions.upload_form")
def upload_form(request: Request, caller: web.Caller) -> Response:
    return _form(request)


def _form(request: Request, error: InsurShareError | None = None, status: int = 200) -> Response:
    settings = web.settings_of(request)
    response = web.render(request, "upload.html.j2", datasets=datasets(settings.schemas_dir),
                          max_mb=settings.portal_max_upload_bytes / 1e6, error=error)
    response.status_code = status
    return response


@pages.post("/submissions/new", name="submissions.upload")
async def upload_page(request: Request, caller: web.Caller) -> Response:
    """The upload form's target: on success the submission's page, else the form with the error."""
    try:
        status, answer = await _upload(request, caller)
    except InsurShareError as exc:
        if isinstance(exc, web.Denied):
            raise
        request.state.access_detail = exc.message
        request.state.access_outcome = web.outcome_of(web.status_of(exc), exc)
        return _form(request, exc, web.status_of(exc))
    note = "received" if status == 201 else "again"
    return RedirectResponse(f"/submissions/{answer['submission_id']}?note={note}", status_code=303)


@pages.get("/submissions/{submission_id}", name="submissions.show")
def show_page(request: Request, caller: web.Caller, submission_id: SubmissionId, note: str = "") -> Response:
    sub = _visible(request, caller, submission_id, "submissions.show")
    results = (subs.rule_results(web.settings_of(request), submission_id)
               if subs.has_report(sub) and web.can(request, "submissions.rules") else None)
    return web.render(request, "submission.html.j2", s=sub, rules=results, note=note,
                      has_report=subs.has_report(sub))
