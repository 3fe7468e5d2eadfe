"""A member's attendance of live sessions and the proofs they give out (forum.attendance).

The history and the proofs are the member's own; a proof's verification page is public
to whoever holds its link and shows only what the member chose.
"""

from datetime import date, timedelta

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone
from django.utils.http import content_disposition_header
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_POST, require_safe

from .. import attendance
from ..models import AttendanceProof
from ..selectors import Window
from ._util import page_number, submit

HISTORY_PER_PAGE = 50


def _date_input() -> forms.DateInput:
    # ISO values, which a browser's date picker needs; required is a browser hint, the
    # service says what is missing.
    return forms.DateInput(attrs={"type": "date", "required": True}, format="%Y-%m-%d")


class ProofForm(forms.Form):
    date_from = forms.DateField(label="From", required=False, widget=_date_input())
    date_to = forms.DateField(label="To (inclusive)", required=False, widget=_date_input())
    shows_handle = forms.BooleanField(
        label="Show my handle",
        required=False,
        help_text="The proof names you by your Kinship handle; otherwise it says “the holder”.",
    )
    shows_group = forms.BooleanField(
        label="Show group names",
        required=False,
        initial=True,
        help_text="Which group each session was in. A group's name may say what it supports.",
    )
    shows_title = forms.BooleanField(
        label="Show session titles",
        required=False,
        help_text="The title the leader gave each session (never its topic or what was said).",
    )
    shows_duration = forms.BooleanField(
        label="Show minutes attended",
        required=False,
        initial=True,
        help_text="How long you were present at each session, and the total.",
    )


def _default_range(rows: list[attendance.AttendedSession]) -> dict[str, date]:
    """From your first attended session (at most the longest range a proof allows) to today."""
    today = timezone.localdate()
    date_to = max(today, rows[0].date) if rows else today
    earliest = date_to - timedelta(days=365 * attendance.PROOF_MAX_YEARS)
    date_from = max(rows[-1].date, earliest) if rows else date_to - timedelta(days=30)
    return {"date_from": date_from, "date_to": date_to}


def _attendance_page(request, form: ProofForm | None = None):
    rows = attendance.attendance_of(request.user)
    page = page_number(request)
    start = (page - 1) * HISTORY_PER_PAGE
    window = Window(
        items=rows[start : start + HISTORY_PER_PAGE],
        page=page,
        has_next=len(rows) > start + HISTORY_PER_PAGE,
    )
    proofs = [
        (proof, request.build_absolute_uri(proof.get_absolute_url()))
        for proof in AttendanceProof.objects.filter(user=request.user)
    ]
    context = {
        "window": window,
        "attended_total": len(rows),
        "form": form or ProofForm(initial=_default_range(rows)),
        "proofs": proofs,
        "proofs_max": attendance.PROOFS_MAX,
    }
    return render(request, "forum/attendance.html", context)


@login_required
@require_safe
def attendance_history(request):
    return _attendance_page(request)


@login_required
@require_POST
def attendance_proof_new(request):
    form = ProofForm(request.POST)
    if form.is_valid():
        data = form.cleaned_data
        proof = submit(
            form,
            lambda: attendance.create_proof(
                user=request.user,
                date_from=data["date_from"],
                date_to=data["date_to"],
                shows_handle=data["shows_handle"],
                shows_group=data["shows_group"],
                shows_title=data["shows_title"],
                shows_duration=data["shows_duration"],
            ),
        )
        if proof is not None:
            messages.success(
                request,
                "Your proof is ready. Give its link to whoever needs it, or download it; "
                "you can revoke it at any time.",
            )
            return redirect(f"{reverse('attendance')}#proof-{proof.pk}")
    return _attendance_page(request, form)


def _proof_context(request, proof: AttendanceProof) -> dict:
    entries = [{**entry, "date": date.fromisoformat(entry["date"])} for entry in proof.entries]
    return {
        "proof": proof,
        "entries": entries,
        "holder": f"@{proof.user.handle}" if proof.shows_handle else None,
        "total_minutes": sum(entry.get("minutes", 0) for entry in entries),
        "verify_url": request.build_absolute_uri(proof.get_absolute_url()),
        "site_host": request.get_host(),
    }


@never_cache
@require_safe
def attendance_proof(request, token: str):
    """The public verification page: anyone with the link, nobody needs an account."""
    proof = AttendanceProof.objects.select_related("user").filter(token=token).first()
    if proof is None:
        response = render(request, "forum/proof_missing.html", status=404)
    else:
        response = render(request, "forum/proof.html", _proof_context(request, proof))
    response["X-Robots-Tag"] = "noindex, nofollow"
    return response


@login_required
@never_cache
@require_safe
def attendance_proof_download(request, proof_id: int):
    """The proof as one self-contained HTML file (inline CSS, no requests), for printing
    or attaching; it carries the verification link. Its owner's only."""
    proof = get_object_or_404(
        AttendanceProof.objects.select_related("user"), pk=proof_id, user=request.user
    )
    html = render_to_string("forum/proof_download.html", _proof_context(request, proof))
    response = HttpResponse(html, content_type="text/html; charset=utf-8")
    response["Content-Disposition"] = content_disposition_header(
        True, f"kinship-attendance-{proof.date_from.isoformat()}-{proof.date_to.isoformat()}.html"
    )
    response["X-Robots-Tag"] = "noindex, nofollow"
    return response


@login_required
@require_POST
def attendance_proof_revoke(request, proof_id: int):
    proof = get_object_or_404(AttendanceProof, pk=proof_id)
    attendance.revoke_proof(user=request.user, proof=proof)
    messages.success(request, "The proof is revoked: its link now says it was withdrawn.")
    return redirect(f"{reverse('attendance')}#proofs")
