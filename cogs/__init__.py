"""Thin discord.py cogs: parse, defer, call one service, render, send."""
