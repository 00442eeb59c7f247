"""Who is calling, for every transport: REST and the live sockets both
authenticate here, so a credential means the same on either (sessions,
API tokens, origins, widget visitor tokens)."""
