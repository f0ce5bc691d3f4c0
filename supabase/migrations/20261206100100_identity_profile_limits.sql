-- Profile settings are bounded and well-formed: preferences is a JSON object of at most
-- 16 KB; telegram_chat_id is a Telegram chat id (digits, optionally negative) or a public
-- @channel name. Rows written before these rules are left as they are.
alter table public.profiles
  add constraint profiles_preferences_object
    check (jsonb_typeof(preferences) = 'object' and pg_column_size(preferences) <= 16384) not valid,
  add constraint profiles_telegram_chat_id_format
    check (telegram_chat_id ~ '^(-?[0-9]{1,20}|@[A-Za-z][A-Za-z0-9_]{4,31})$') not valid,
  add constraint profiles_discord_webhook_url_length check (char_length(discord_webhook_url) <= 500) not valid,
  add constraint profiles_avatar_url_length check (char_length(avatar_url) <= 2000) not valid;
