"""Access lists and door decisions, pure: the list's schema and signature (`schema`,
`signing`), the gateway's trusted time (`clock`), offline one-time codes (`codes`) and the
decision rule (`decide`). Times are passed in; nothing here reads a clock or a file."""
