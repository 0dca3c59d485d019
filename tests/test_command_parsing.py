import pytest

from bot.services.commands import CommandError, mentioned_channel, mentioned_group, parse


def test_subcommands_and_shorthands():
    assert parse("").name == "help"
    assert parse("ME 7d").name == "me" and parse("ME 7d").args == ["7d"]
    assert parse("30d").name == "me" and parse("30d").args == ["30d"]
    user = parse("<@U123ABC|ana> month")
    assert (user.name, user.target_user, user.args) == ("user", "U123ABC", ["month"])


def test_unknown_subcommand_suggests_the_closest():
    with pytest.raises(CommandError, match="Did you mean `/tokens status`"):
        parse("stauts")
    with pytest.raises(CommandError) as error:
        parse("zzzz")
    assert "Did you mean" not in error.value.message


def test_plain_at_name_is_explained_and_long_text_refused():
    with pytest.raises(CommandError, match="@-mention"):
        parse("@ana")
    with pytest.raises(CommandError, match="4,000 characters long"):
        parse("x" * 4000)


def test_mentions():
    assert mentioned_channel("<#C0123|general>") == "C0123"
    assert mentioned_group("<!subteam^S0456|@platform>") == "S0456"
    assert mentioned_channel("#general") is None
