"""Wireshark integration: the Lua dissectors of lua_dissectors/ and the commands that install them."""
