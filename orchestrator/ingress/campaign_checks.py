"""What ``orchestrator campaign validate`` says about a campaign sent over HTTP, nothing written.

For ``POST /v1/campaigns?dry_run=true`` with any body a start takes, and for a JSON or YAML
start, which runs the same checks before it writes START. A JSON or YAML spec is checked with the
files it names inside ``CONTACTS_DIR`` (or its topic). A multipart body goes through the start's
own parser (:func:`~orchestrator.ingress.campaign_upload.receive_upload`: same parts, limits and
refusals) with an :class:`~orchestrator.campaign.upload_spool.UploadSpool` where a start has the
``campaign.uploads`` writer, and the held rows are checked in the loop that checks a file's.

A dry run reads nothing from Kafka either: a name in use is found by the start (409), for an
upload as for a JSON spec.
"""

from __future__ import annotations

import asyncio
from collections.abc import Collection
from typing import Any

from starlette.requests import Request

from contracts.campaign import CampaignDocument, CampaignSpec, campaign_lines
from orchestrator.campaign.contacts import ContactFileError
from orchestrator.campaign.contacts_dir import confine_spec
from orchestrator.campaign.upload_spool import SpoolFull, UploadSpool
from orchestrator.campaign.validate import Report, RequestFiles, validate_campaign
from orchestrator.clock import utc_now
from orchestrator.config import Settings
from orchestrator.ingress.campaign_spec import Refused, refuse
from orchestrator.ingress.campaign_upload import receive_upload
from orchestrator.web.responses import too_large

__all__ = ["CampaignChecks"]


async def _any_name(spec: CampaignSpec) -> None:
    return None


#: Held rows may take this many times the request's cap: a typical CSV takes about 1.3 times its
#: size as held rows, so whatever a start accepts, a dry run checks; only a crafted file (cells of
#: control characters, six bytes each as JSON) is refused, with 413, before it fills the disk.
HOLD_FACTOR = 2


class CampaignChecks:
    def __init__(self, settings: Settings, flow_names: Collection[str]) -> None:
        self.settings = settings
        self.flow_names = frozenset(flow_names)

    def confined(self, spec: CampaignSpec) -> CampaignSpec:
        """``spec`` with its file paths inside ``CONTACTS_DIR``; 422 when one is not."""
        try:
            return confine_spec(spec, self.settings.contacts_dir)
        except ContactFileError as err:
            raise refuse(422, str(err)) from None

    async def spec(self, spec: CampaignSpec, yaml_text: bytes | None) -> Report:
        """The report on a JSON or YAML body (``yaml_text``: the YAML, for each field's line)."""
        return await asyncio.to_thread(self._validate, spec, "body", yaml_text, None)

    async def upload(self, request: Request, *, spec_limit: int) -> Report:
        """The report on a multipart body; 400/413/422 where a start would refuse it."""
        with UploadSpool(self.settings.contacts_upload_max_bytes * HOLD_FACTOR) as spool:
            try:
                upload = await receive_upload(
                    request, self.settings, spec_limit=spec_limit, check_name=_any_name, sink=spool
                )
            except SpoolFull as err:
                raise Refused(too_large(str(err))) from None
            spec = self.confined(upload.spec)
            region = spec.contacts.default_region
            rows = None if upload.contacts_name is None else spool.contacts(region)
            files = RequestFiles(rows, spool.dnc, upload.contacts_name or "contacts")
            yaml_text = upload.spec_text if upload.spec_yaml else None
            report = await asyncio.to_thread(
                self._validate, spec, upload.spec_name, yaml_text, files
            )
        report.warnings += upload.notes
        return report

    def _validate(
        self,
        spec: CampaignSpec,
        source: str,
        yaml_text: bytes | None,
        files: RequestFiles | None,
    ) -> Report:
        lines: dict[tuple[Any, ...], int] = {}
        if yaml_text is not None:  # parsed already; again only for the line of each field
            lines = campaign_lines(yaml_text.decode("utf-8"), source)
        return validate_campaign(
            CampaignDocument(spec, source, lines),
            now=utc_now(),
            public_base=self.settings.public_base,
            account_cps=self.settings.vonage_cps,
            flow_names=self.flow_names,
            files=files,
        )
