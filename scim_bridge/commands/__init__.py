"""The administrator's commands besides `serve`: `check` (would provisioning work?) and `audit` (who changed
what). Each takes the same settings as `serve`."""
