"""Targeted cancel of one prompt: through the jobs API (0.38) or /queue and /interrupt (0.3.64)."""

from __future__ import annotations

from collections.abc import Collection

from bot.comfy.client import ComfyClient
from bot.comfy.runs import CancelResult


async def cancel_prompt(client: ComfyClient, prompt_id: str, *, has_jobs_api: bool) -> CancelResult:
    """Remove the prompt if pending, interrupt it if running; never anybody else's.

    REMOVED means ComfyUI will send nothing more about it: the caller settles it.
    """
    if has_jobs_api:
        return await _through_jobs_api(client, prompt_id)
    for _ in range(3):
        queue = await client.queue()
        if queue.is_pending(prompt_id):
            await client.delete_pending([prompt_id])
            if not (await client.queue()).is_running(prompt_id):
                return CancelResult.REMOVED
            # It started between the two looks: go round again and interrupt it.
        elif queue.is_running(prompt_id):
            await client.interrupt(prompt_id)
            return CancelResult.INTERRUPTED
        else:
            return CancelResult.NOT_FOUND
    return CancelResult.NOT_FOUND


async def _through_jobs_api(client: ComfyClient, prompt_id: str) -> CancelResult:
    # ComfyUI's cancel interrupts only while the prompt is the running one (checked atomically).
    record = await client.job(prompt_id)
    if record is None or record.is_finished:
        return CancelResult.NOT_FOUND
    if not await client.cancel_job(prompt_id):
        return CancelResult.NOT_FOUND
    # Had a pending one started in between, ComfyUI interrupted it: it ends cancelled all the same.
    return CancelResult.REMOVED if record.status == "pending" else CancelResult.INTERRUPTED


async def withdraw(client: ComfyClient, prompt_ids: Collection[str], *, has_jobs_api: bool) -> None:
    """Take prompts we gave up on out of ComfyUI, pending or running, so they never run twice."""
    if has_jobs_api:
        for prompt_id in prompt_ids:
            await client.cancel_job(prompt_id)
        return
    queue = await client.queue()
    pending = [p for p in prompt_ids if queue.is_pending(p)]
    if pending:
        await client.delete_pending(pending)
    for prompt_id in prompt_ids:
        if queue.is_running(prompt_id):
            await client.interrupt(prompt_id)
