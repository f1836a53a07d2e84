"""The Discord front door's services: replies kept up to date, buttons, input checks, restarts."""
