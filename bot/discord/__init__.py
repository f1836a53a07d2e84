"""The Discord front door: the client and its start-up, replies kept current (and where they live:
ReplyLocation), buttons, input checks, restarts, the one error hook, and the Discord markdown of
render and listings."""
