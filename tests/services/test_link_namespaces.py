"""`/tokens link <vendor>` must write the actor namespace the connectors attribute rows by; a
namespace of its own would link an identity no usage row ever carries."""

from __future__ import annotations

import pytest

from bot.services.people import IDENTITY_COLUMNS, LINK_NAMESPACES, actor_for


def test_every_linkable_vendor_word_maps_to_a_namespace_the_connectors_use():
    attributed = set(IDENTITY_COLUMNS.values()) | {"email"}
    assert {word: ns for word, ns in LINK_NAMESPACES.items() if ns not in attributed} == {}


@pytest.mark.parametrize(
    ("vendor_word", "external_id", "actor"),
    [
        # The Anthropic connector attributes Admin API rows to "anthropic_user:<user id>".
        ("anthropic", "user_01ABC", "anthropic_user:user_01ABC"),
        ("openai", "user-abc", "openai_user:user-abc"),
        ("github", "@Octo-Cat", "github:octo-cat"),
    ],
)
def test_link_actor_names(vendor_word, external_id, actor):
    assert actor_for(vendor_word, external_id) == actor
