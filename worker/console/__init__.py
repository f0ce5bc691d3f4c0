"""The operator console: a live web view of the platform for admins (``tradefleet console``).

Pages read Postgres as the signed-in admin (the role and JWT claims PostgREST would use),
so row-level security and the admin checks of the SQL functions decide what it shows and
does. One LISTEN connection per console process feeds every browser through Server-Sent
Events.
"""
