"""/settings: a member's defaults for /generate, private results, kept across restarts."""

from __future__ import annotations

from pathlib import Path

from bot.jobs.preferences import MemberDefaults, Preferences
from tests.discord_env import final_edit, open_services
from tests.fakes.comfy import FakeComfy
from tests.fakes.discord import FakeDiscord, run_bot
from tests.iterate_env import (
    GRID_LABELS,
    MODELS,
    custom_id,
    iterate_settings,
    labels,
    original_edit,
    size_of,
)


async def test_settings_apply_to_generate_and_survive_a_restart(
    fake_discord: FakeDiscord, fake_comfy: FakeComfy, tmp_path: Path
) -> None:
    settings = iterate_settings(fake_comfy.url, tmp_path)
    user, other = fake_discord.add_user("ada"), fake_discord.add_user("bea")
    async with open_services(settings, journal=True) as services, run_bot(services.new_bot()):
        ix = await fake_discord.slash(
            "settings", {"workflow": "slow", "count": 4, "private": True}, user_id=user
        )
        answer = await ix.wait_response()
    assert answer["type"] == 4
    assert answer["data"]["flags"] == 64
    assert "Workflow: slow" in answer["data"]["content"]
    assert "Count: 4" in answer["data"]["content"]
    assert "Private results: yes" in answer["data"]["content"]

    async with open_services(settings, journal=True) as services, run_bot(services.new_bot()):
        mine = await fake_discord.slash("generate", {"prompt": "a fox"}, user_id=user)
        theirs = await fake_discord.slash("generate", {"prompt": "a fox"}, user_id=other)
        deferred = await mine.wait_response()
        final = await fake_discord.wait_for(final_edit(mine), timeout=10)
        public = await theirs.wait_response()
        await fake_discord.wait_for(final_edit(theirs), timeout=10)
        assert services.jobs.journal is not None
        stored = await Preferences(services.jobs.journal.store).get(str(user))  # read again

    assert deferred["type"] == 5
    assert deferred["data"]["flags"] == 64  # ephemeral: only the member sees it
    assert labels(final.json) == GRID_LABELS
    assert size_of(final.files[0][1]) == (64, 48)
    assert not (public.get("data") or {}).get("flags")
    assert stored == MemberDefaults("slow", None, 4, is_private=True)


async def test_settings_without_options_show_them_and_reset_forgets(
    fake_discord: FakeDiscord, fake_comfy: FakeComfy, tmp_path: Path
) -> None:
    settings = iterate_settings(fake_comfy.url, tmp_path)
    user = fake_discord.add_user("cal")
    async with open_services(settings) as services, run_bot(services.new_bot()):
        first = await fake_discord.slash("settings", {"aspect": "16:9"}, user_id=user)
        await first.wait_response()
        shown = await fake_discord.slash("settings", {}, user_id=user)
        shown_text = (await shown.wait_response())["data"]["content"]
        reset = await fake_discord.slash("settings", {"reset": True}, user_id=user)
        reset_text = (await reset.wait_response())["data"]["content"]
        unknown = await fake_discord.slash("settings", {"workflow": "nope"}, user_id=user)
        unknown_text = (await unknown.wait_response())["data"]["content"]

    assert "Aspect: 16:9" in shown_text
    assert "Aspect: the workflow default" in reset_text
    assert "Workflow: the server default" in reset_text
    assert "No workflow 'nope'" in unknown_text


async def test_a_default_aspect_sizes_the_workflows_that_have_a_size(
    fake_discord: FakeDiscord, tmp_path: Path
) -> None:
    user = fake_discord.add_user("dee")
    async with FakeComfy(models=MODELS) as fake_comfy:
        settings = iterate_settings(fake_comfy.url, tmp_path)
        async with open_services(settings) as services, run_bot(services.new_bot()):
            ix = await fake_discord.slash("settings", {"aspect": "9:16"}, user_id=user)
            await ix.wait_response()
            run = await fake_discord.slash(
                "generate", {"prompt": "x", "workflow": "txt2img"}, user_id=user
            )
            await fake_discord.wait_for(final_edit(run), timeout=10)
            explicit = await fake_discord.slash(
                "generate", {"prompt": "x", "workflow": "txt2img", "width": 512}, user_id=user
            )
            await fake_discord.wait_for(final_edit(explicit), timeout=10)
        sizes = [
            (
                entry["prompt"][2]["5"]["inputs"]["width"],
                entry["prompt"][2]["5"]["inputs"]["height"],
            )
            for entry in fake_comfy.history.values()
        ]
    assert sizes == [(768, 1344), (512, 1024)]  # an explicit size wins over the default aspect


async def test_private_results_make_the_result_buttons_answer_privately(
    fake_discord: FakeDiscord, fake_comfy: FakeComfy, tmp_path: Path
) -> None:
    settings = iterate_settings(fake_comfy.url, tmp_path)
    owner, private = fake_discord.add_user("eve"), fake_discord.add_user("fay")
    async with open_services(settings) as services, run_bot(services.new_bot()):
        ix = await fake_discord.slash("settings", {"private": True}, user_id=private)
        await ix.wait_response()
        grid = await fake_discord.slash(
            "generate", {"prompt": "x", "workflow": "slow", "count": 2}, user_id=owner
        )
        final = await fake_discord.wait_for(final_edit(grid), timeout=10)
        clicks = []
        for label in ("U1", "V2"):
            click = await fake_discord.click(
                grid.original_message_id or 0, custom_id(final.json, label), user_id=private
            )
            clicks.append(await click.wait_response())
            await fake_discord.wait_for(
                final_edit(click) if label == "V2" else original_edit(click)
            )

    assert [answer["data"]["flags"] for answer in clicks] == [64, 64]


async def test_a_default_workflow_removed_since_falls_back_to_the_servers(
    fake_discord: FakeDiscord, fake_comfy: FakeComfy, tmp_path: Path
) -> None:
    settings = iterate_settings(fake_comfy.url, tmp_path)
    user = fake_discord.add_user("gil")
    async with open_services(settings, journal=True) as services, run_bot(services.new_bot()):
        ix = await fake_discord.slash("settings", {"workflow": "fail"}, user_id=user)
        await ix.wait_response()
    (settings.workflows_dir / "fail.json").unlink()

    async with open_services(settings, journal=True) as services, run_bot(services.new_bot()):
        run = await fake_discord.slash("generate", {"prompt": "x"}, user_id=user)
        final = await fake_discord.wait_for(final_edit(run), timeout=10)
        job_id = final.json["embeds"][0]["footer"]["text"].removeprefix("job ")
        assert services.jobs.get(job_id).request.workflow == settings.default_workflow
