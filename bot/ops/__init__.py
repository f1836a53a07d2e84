"""Operating ComfyCord: Prometheus metrics, the bot's /health, structured and secret-free logs.

Sits beside the front doors over the core: it reads bot.jobs and bot.comfy, and the front doors
(bot.discord, bot.http) hand it what it watches. It knows no Discord.
"""
