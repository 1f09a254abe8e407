"""The e-contract of a lease: the PDF, and signatures over the exact bytes a signer saw."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Query, Request, Response
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import select

from cloud.api.deps import KeysDep, NowDep, SessionDep, guard, scoped_get
from cloud.api.paging import PathId
from cloud.api.problems import ProblemError
from cloud.contracts import pdf
from cloud.contracts.fonts import find_fonts
from cloud.contracts.record import contract_data
from cloud.models import ContractSignature, Lease, LeaseStatus, Tenant, User
from cloud.security import audit
from cloud.security.authz import Permission, Principal
from cloud.security.crypto import FieldKeys
from protocols.errors import ConfigError

router = APIRouter(tags=["contracts"])
P = Permission
LangQ = Annotated[pdf.Language, Query(description="zh-CN or en")]


class SignIn(BaseModel):
    language: pdf.Language
    document_sha256: str = Field(pattern=r"^[0-9a-f]{64}$")


class SignatureOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    lease_id: int
    signer_name: str
    signer_tenant_id: int | None
    signer_user_id: int | None
    language: str
    document_sha256: str
    signed_at: datetime
    ip: str


def _document(
    request: Request, session: SessionDep, keys: FieldKeys, lease: Lease, language: pdf.Language
) -> bytes:
    try:
        fonts = find_fonts(request.app.state.settings.cjk_font)
    except ConfigError as exc:
        raise ProblemError(503, str(exc)) from None
    return pdf.render(contract_data(session, keys, lease), language, fonts)


@router.get(
    "/leases/{lease_id}/contract.pdf",
    response_class=Response,
    responses={200: {"content": {"application/pdf": {}}}},
)
def contract_pdf(
    lease_id: PathId,
    request: Request,
    me: Annotated[Principal, guard(P.LEASES_READ, "path")],
    session: SessionDep,
    keys: KeysDep,
    lang: LangQ = "zh-CN",
) -> Response:
    """The contract; its SHA-256 is in X-Document-SHA256 (what a signature must name)."""
    lease = scoped_get(session, me, Lease, lease_id)
    document = _document(request, session, keys, lease, lang)
    return Response(
        document,
        media_type="application/pdf",
        headers={
            "X-Document-SHA256": pdf.sha256(document),
            "Content-Disposition": f'inline; filename="lease-{lease.id}-{lang}.pdf"',
        },
    )


@router.post("/leases/{lease_id}/signatures", status_code=201)
def sign_contract(
    lease_id: PathId,
    body: SignIn,
    request: Request,
    me: Annotated[Principal, guard(P.LEASES_SIGN, "path")],
    session: SessionDep,
    keys: KeysDep,
    now: NowDep,
) -> SignatureOut:
    """Record a signature over the document with `document_sha256`: it must be the contract as
    rendered now (terms unchanged since the signer saw it)."""
    lease = scoped_get(session, me, Lease, lease_id)
    if lease.status not in (LeaseStatus.DRAFT, LeaseStatus.SIGNED):
        raise ProblemError(409, f"a {lease.status} lease is no longer signed")
    current = pdf.sha256(_document(request, session, keys, lease, body.language))
    if current != body.document_sha256:
        raise ProblemError(
            409,
            "the contract changed since it was fetched; fetch and read it again",
            document_sha256=current,
        )
    if me.tenant_id is not None:
        signer_name = session.get_one(Tenant, me.tenant_id).name
    else:
        user = session.get_one(User, me.user_id)
        signer_name = user.display_name or user.username
    record = ContractSignature(
        lease_id=lease.id,
        signer_name=signer_name,
        signer_tenant_id=me.tenant_id,
        signer_user_id=me.user_id,
        language=body.language,
        document_sha256=current,
        signed_at=now,
        ip=me.ip,
    )
    session.add(record)
    session.flush()
    detail = {"sha256": current, "language": body.language}
    audit.about(session, me, "lease.contract_signed", now, lease, detail=detail)
    session.commit()
    return SignatureOut.model_validate(record)


@router.get("/leases/{lease_id}/signatures")
def list_signatures(
    lease_id: PathId,
    me: Annotated[Principal, guard(P.LEASES_READ, "path")],
    session: SessionDep,
) -> list[SignatureOut]:
    lease = scoped_get(session, me, Lease, lease_id)
    rows = session.scalars(
        select(ContractSignature)
        .where(ContractSignature.lease_id == lease.id)
        .order_by(ContractSignature.id)
    )
    return [SignatureOut.model_validate(r) for r in rows]
