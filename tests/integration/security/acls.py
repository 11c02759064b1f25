"""Apply the generated ``KafkaUser`` ACLs to the local broker, as Strimzi's User Operator would.

aiokafka has no CreateAcls, so this sends the request itself (CreateAcls v1, which Kafka 4.x
still serves) over the broker's PLAINTEXT listener, whose anonymous principal is a super user.
The ACLs come from ``deploy.gen_users`` for the test's topic prefix: what the tests prove
sufficient is exactly what the committed manifests grant.
"""

from __future__ import annotations

from typing import Any

from aiokafka.conn import create_conn
from aiokafka.protocol.api import Request, RequestStruct, Response
from aiokafka.protocol.types import Array, Int8, Int16, Int32, Schema, String

from deploy import gen_users

# Kafka's enum codes (org.apache.kafka.common.resource / acl).
_RESOURCE = {"topic": 2, "group": 3, "cluster": 4, "transactionalId": 5}
_PATTERN = {"literal": 3, "prefix": 4}
_OPERATION = {
    "All": 2,
    "Read": 3,
    "Write": 4,
    "Create": 5,
    "Delete": 6,
    "Alter": 7,
    "Describe": 8,
    "ClusterAction": 9,
    "DescribeConfigs": 10,
    "AlterConfigs": 11,
    "IdempotentWrite": 12,
}
_ALLOW = 3


class CreateAclsResponse_v1(Response):
    API_KEY = 30
    API_VERSION = 1
    SCHEMA = Schema(
        ("throttle_time_ms", Int32),
        ("results", Array(("error_code", Int16), ("error_message", String("utf-8")))),
    )


class CreateAclsRequest_v1(RequestStruct):
    API_KEY = 30
    API_VERSION = 1
    RESPONSE_TYPE = CreateAclsResponse_v1
    SCHEMA = Schema(
        (
            "creations",
            Array(
                ("resource_type", Int8),
                ("resource_name", String("utf-8")),
                ("resource_pattern_type", Int8),
                ("principal", String("utf-8")),
                ("host", String("utf-8")),
                ("operation", Int8),
                ("permission_type", Int8),
            ),
        ),
    )


class CreateAcls(Request[CreateAclsRequest_v1]):
    API_KEY = 30

    def __init__(self, creations: list[tuple[Any, ...]]) -> None:
        self._creations = creations

    def build(self, request_struct_class: type[CreateAclsRequest_v1]) -> CreateAclsRequest_v1:
        return request_struct_class(self._creations)


def creations(prefix: str) -> list[tuple[Any, ...]]:
    """Every allow rule of every generated KafkaUser, for principal ``User:<name>``."""
    out = []
    for user in gen_users.users():
        for acl in gen_users.acls(user, prefix):
            name = acl.name if acl.name is not None else "kafka-cluster"
            for op in acl.operations:
                out.append(
                    (
                        _RESOURCE[acl.resource],
                        name,
                        _PATTERN[acl.pattern],
                        f"User:{user.name}",
                        "*",
                        _OPERATION[op],
                        _ALLOW,
                    )
                )
    return out


async def apply_generated_acls(plaintext_bootstrap: str, prefix: str) -> int:
    """Create the ACLs; returns how many. Raises on any error the broker reports."""
    host, _, port = plaintext_bootstrap.rpartition(":")
    conn = await create_conn(host, int(port), request_timeout_ms=10_000)
    try:
        wanted = creations(prefix)
        resp = await conn.send(CreateAcls(wanted))
        errors = [(code, msg) for code, msg in resp.results if code != 0]
        assert not errors, errors
        return len(wanted)
    finally:
        conn.close()
