"""API shapes of the channels: intake sources, the intake body, webhook subscribers, dead letters."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from .schemas import (
    MAX_ATTACHMENTS, Attachment, Code, Location, LongText, Reporter, Role, Short, _Out,
)

SourceName = Annotated[str, StringConstraints(min_length=1, max_length=64, pattern=r"^[a-z0-9][a-z0-9_-]*$")]
EventType = Annotated[str, StringConstraints(min_length=1, max_length=64, pattern=r"^(\*|[A-Z][A-Za-z]+)$")]


class IntakeSourceCreate(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{
        "name": "sensor-platform", "workflow": "grid_event", "reporter_id": "sensor-platform",
        "role": "grid_worker", "unit": "37060200100101", "channel": "sensor"}]})

    name: SourceName
    workflow: Code = "grid_event"
    #: Who the cases it posts are reported by (an account id or a system name) and in which role.
    reporter_id: Code
    role: Role = "grid_worker"
    #: The reporter's unit: where a case without coordinates or unit is filed.
    unit: Code | None = None
    #: The case's ``channel`` (default: the source's name, ``-`` as ``_``).
    channel: Annotated[str, StringConstraints(max_length=32, pattern=r"^[a-z0-9_]+$")] | None = None


class IntakeSourcePublic(_Out):
    name: str
    workflow: str
    reporter_id: str
    role: str
    unit: str | None
    channel: str
    active: bool
    created_at: datetime


class IntakeSourceIssued(IntakeSourcePublic):
    #: ``whsec_…``: shown in this response only; sign deliveries with it (docs/channels.md).
    secret: str


class IntakeSourcesPublic(BaseModel):
    data: list[IntakeSourcePublic]


class IntakeCase(BaseModel):
    """What a source posts: a case as ``POST /cases`` takes it, the channel and reporter set by the source."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{
        "category": "C0101", "title": "井盖位移", "description": "传感器报警：井盖位移",
        "location": {"lat": 37.5312, "lon": 121.3915}}]})

    workflow: Code | None = None
    category: Annotated[str, StringConstraints(max_length=64, pattern=r"^[^\x00-\x1f]*$")] = ""
    title: Short = ""
    description: LongText = ""
    unit: Code | None = None
    location: Location = Location()
    reporter: Reporter = Reporter()
    attachments: list[Attachment] = Field(default_factory=list, max_length=MAX_ATTACHMENTS)
    confidential: bool = False


class IntakeFiled(BaseModel):
    number: str
    state: str
    #: True when this delivery id was filed before: the case it filed then, nothing new.
    replayed: bool


class WebhookCreate(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{
        "url": "https://receiver.example/gridflow", "event_types": ["CaseReported", "CaseClosed"],
        "label": "区大数据平台"}]})

    url: Annotated[str, StringConstraints(min_length=8, max_length=500, pattern=r"^https?://[^\s]+$")]
    event_types: list[EventType] = Field(min_length=1, max_length=50)
    label: Annotated[str, StringConstraints(max_length=100, pattern=r"^[^\x00-\x1f]*$")] = ""


class WebhookPublic(_Out):
    id: int
    url: str
    event_types: list[str]
    label: str
    active: bool
    created_at: datetime


class WebhookIssued(WebhookPublic):
    #: ``whsec_…``: shown in this response only; verify deliveries with it (docs/channels.md).
    secret: str


class WebhooksPublic(BaseModel):
    data: list[WebhookPublic]


class DeadLetterPublic(_Out):
    id: int
    kind: str
    case: str | None
    subscriber_id: int | None
    event_type: str | None
    attempts: int
    created_at: datetime
    failed_at: datetime
    last_error: str | None
    #: A resident notice's phone, masked.
    to: str | None


class DeadLettersPublic(BaseModel):
    data: list[DeadLetterPublic]
