//! Front ends of the user-space stacks (SOCKS5, HTTP proxy, port forwards).
