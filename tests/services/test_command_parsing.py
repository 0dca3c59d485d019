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


def test_every_subcommand_in_the_help_has_a_handler_in_the_command_table():
    from bot.services.commands import SUBCOMMANDS
    from bot.slack.command_table import COMMANDS

    assert set(COMMANDS) == set(SUBCOMMANDS) | {"user"}  # "user": /tokens @user [period]


def test_mentions_are_read_with_their_labels():
    from bot.services.mentions import CHANNEL, USER, USERGROUP, Mention, parse_mention

    assert parse_mention("<@U1|ana>") == Mention(USER, "U1", "ana")
    assert parse_mention("<#C1|eng>") == Mention(CHANNEL, "C1", "eng")
    assert parse_mention("<!subteam^S1|@platform>") == Mention(USERGROUP, "S1", "platform")
    assert parse_mention("<!subteam^S1>") == Mention(USERGROUP, "S1", "")
    assert parse_mention("@ana") is None and parse_mention("<@U1> extra") is None
