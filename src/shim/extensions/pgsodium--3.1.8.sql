-- db-ci emulation of pgsodium 3.1.8: the functions PostgreSQL and pgcrypto compute exactly
-- as libsodium does, the key table, and for everything else the function with pgsodium's
-- signature raising an error that names it. Schema pgsodium is created by CREATE EXTENSION
-- (the control file pins it); pgcrypto's functions are bound when this script runs.
\echo Use "CREATE EXTENSION pgsodium" to load this file. \quit

DO $roles$
DECLARE
  r text;
BEGIN
  -- pgsodium's roles (cluster-wide, so they may exist already from another database).
  FOREACH r IN ARRAY ARRAY['pgsodium_keyiduser', 'pgsodium_keyholder', 'pgsodium_keymaker'] LOOP
    IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = r) THEN
      EXECUTE format('CREATE ROLE %I NOLOGIN', r);
    END IF;
  END LOOP;
  IF NOT pg_catalog.pg_has_role('pgsodium_keyholder', 'pgsodium_keyiduser', 'MEMBER') THEN
    GRANT pgsodium_keyiduser TO pgsodium_keyholder;
  END IF;
  IF NOT pg_catalog.pg_has_role('pgsodium_keymaker', 'pgsodium_keyholder', 'MEMBER') THEN
    GRANT pgsodium_keyholder TO pgsodium_keymaker;
  END IF;
END
$roles$;

CREATE FUNCTION pgsodium._not_emulated(fn text, needs text) RETURNS void
LANGUAGE plpgsql
AS $fn$
BEGIN
  RAISE EXCEPTION 'pgsodium: pgsodium.%() is not available in db-ci: it needs %, which db-ci does not emulate', fn, needs
    USING ERRCODE = 'feature_not_supported';
END
$fn$;

CREATE TYPE pgsodium.crypto_box_keypair AS (public bytea, secret bytea);
CREATE TYPE pgsodium.crypto_sign_keypair AS (public bytea, secret bytea);
CREATE TYPE pgsodium.key_status AS ENUM ('default', 'valid', 'invalid', 'expired');
CREATE TYPE pgsodium.key_type AS ENUM ('aead-ietf', 'aead-det', 'hmacsha512', 'hmacsha256', 'auth',
  'shorthash', 'generichash', 'kdf', 'secretbox', 'secretstream', 'stream_xchacha20');

-- Random bytes from the operating system's generator (pgcrypto reads it the way libsodium does).
CREATE FUNCTION pgsodium.randombytes_buf(size integer) RETURNS bytea
LANGUAGE sql VOLATILE STRICT
BEGIN ATOMIC
  SELECT coalesce(string_agg(gen_random_bytes(least(1024, size - g)), ''::bytea ORDER BY g), ''::bytea)
  FROM generate_series(0, size - 1, 1024) AS g;
END;

CREATE FUNCTION pgsodium._random_u32() RETURNS bigint
LANGUAGE sql VOLATILE
RETURN ('x' || encode(gen_random_bytes(4), 'hex'))::bit(32)::bigint;

CREATE FUNCTION pgsodium.randombytes_random() RETURNS integer
LANGUAGE sql VOLATILE
RETURN (pgsodium._random_u32() - 2147483648)::integer;

-- Uniform in [0, upper_bound), without modulo bias (rejection sampling, as libsodium does).
CREATE FUNCTION pgsodium.randombytes_uniform(upper_bound integer) RETURNS integer
LANGUAGE plpgsql VOLATILE STRICT
AS $fn$
DECLARE
  x bigint;
  lim bigint;
BEGIN
  IF upper_bound < 2 THEN
    RETURN 0;
  END IF;
  lim := 4294967296 - (4294967296 % upper_bound);
  LOOP
    x := pgsodium._random_u32();
    IF x < lim THEN
      RETURN (x % upper_bound)::integer;
    END IF;
  END LOOP;
END
$fn$;

CREATE FUNCTION pgsodium.randombytes_new_seed() RETURNS bytea
LANGUAGE sql VOLATILE RETURN pgsodium.randombytes_buf(32);

-- Keys and nonces are random bytes of the algorithm's length.
CREATE FUNCTION pgsodium.crypto_secretbox_keygen() RETURNS bytea LANGUAGE sql VOLATILE RETURN pgsodium.randombytes_buf(32);
CREATE FUNCTION pgsodium.crypto_secretbox_noncegen() RETURNS bytea LANGUAGE sql VOLATILE RETURN pgsodium.randombytes_buf(24);
CREATE FUNCTION pgsodium.crypto_aead_det_keygen() RETURNS bytea LANGUAGE sql VOLATILE RETURN pgsodium.randombytes_buf(32);
CREATE FUNCTION pgsodium.crypto_aead_det_noncegen() RETURNS bytea LANGUAGE sql VOLATILE RETURN pgsodium.randombytes_buf(16);
CREATE FUNCTION pgsodium.crypto_aead_ietf_keygen() RETURNS bytea LANGUAGE sql VOLATILE RETURN pgsodium.randombytes_buf(32);
CREATE FUNCTION pgsodium.crypto_aead_ietf_noncegen() RETURNS bytea LANGUAGE sql VOLATILE RETURN pgsodium.randombytes_buf(12);
CREATE FUNCTION pgsodium.crypto_box_noncegen() RETURNS bytea LANGUAGE sql VOLATILE RETURN pgsodium.randombytes_buf(24);
CREATE FUNCTION pgsodium.crypto_auth_keygen() RETURNS bytea LANGUAGE sql VOLATILE RETURN pgsodium.randombytes_buf(32);
CREATE FUNCTION pgsodium.crypto_auth_hmacsha256_keygen() RETURNS bytea LANGUAGE sql VOLATILE RETURN pgsodium.randombytes_buf(32);
CREATE FUNCTION pgsodium.crypto_auth_hmacsha512_keygen() RETURNS bytea LANGUAGE sql VOLATILE RETURN pgsodium.randombytes_buf(32);
CREATE FUNCTION pgsodium.crypto_generichash_keygen() RETURNS bytea LANGUAGE sql VOLATILE RETURN pgsodium.randombytes_buf(32);
CREATE FUNCTION pgsodium.crypto_shorthash_keygen() RETURNS bytea LANGUAGE sql VOLATILE RETURN pgsodium.randombytes_buf(16);
CREATE FUNCTION pgsodium.crypto_kdf_keygen() RETURNS bytea LANGUAGE sql VOLATILE RETURN pgsodium.randombytes_buf(32);
CREATE FUNCTION pgsodium.crypto_pwhash_saltgen() RETURNS bytea LANGUAGE sql VOLATILE RETURN pgsodium.randombytes_buf(16);

-- Hashes and MACs: the same bytes libsodium produces.
CREATE FUNCTION pgsodium.crypto_hash_sha256(message bytea) RETURNS bytea
LANGUAGE sql IMMUTABLE STRICT RETURN sha256(message);
CREATE FUNCTION pgsodium.crypto_hash_sha512(message bytea) RETURNS bytea
LANGUAGE sql IMMUTABLE STRICT RETURN sha512(message);

CREATE FUNCTION pgsodium.crypto_auth_hmacsha256(message bytea, secret bytea) RETURNS bytea
LANGUAGE sql IMMUTABLE STRICT RETURN hmac(message, secret, 'sha256');
CREATE FUNCTION pgsodium.crypto_auth_hmacsha256_verify(hash bytea, message bytea, secret bytea) RETURNS boolean
LANGUAGE sql IMMUTABLE STRICT RETURN hmac(message, secret, 'sha256') = hash;
CREATE FUNCTION pgsodium.crypto_auth_hmacsha512(message bytea, secret bytea) RETURNS bytea
LANGUAGE sql IMMUTABLE STRICT RETURN hmac(message, secret, 'sha512');
CREATE FUNCTION pgsodium.crypto_auth_hmacsha512_verify(hash bytea, message bytea, secret bytea) RETURNS boolean
LANGUAGE sql IMMUTABLE STRICT RETURN hmac(message, secret, 'sha512') = hash;
-- crypto_auth is HMAC-SHA-512 truncated to 32 bytes (libsodium's HMAC-SHA-512-256).
CREATE FUNCTION pgsodium.crypto_auth(message bytea, key bytea) RETURNS bytea
LANGUAGE sql IMMUTABLE STRICT RETURN substring(hmac(message, key, 'sha512') FROM 1 FOR 32);
CREATE FUNCTION pgsodium.crypto_auth_verify(mac bytea, message bytea, key bytea) RETURNS boolean
LANGUAGE sql IMMUTABLE STRICT RETURN substring(hmac(message, key, 'sha512') FROM 1 FOR 32) = mac;

-- The key table: create_key records keys as pgsodium does. A key without raw_key is, in
-- pgsodium, derived from the server root key; db-ci has none, so using such a key raises.
CREATE TABLE pgsodium.key (
  id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  status pgsodium.key_status DEFAULT 'valid',
  created timestamp with time zone NOT NULL DEFAULT CURRENT_TIMESTAMP,
  expires timestamp with time zone,
  key_type pgsodium.key_type,
  key_id bigserial,
  key_context bytea DEFAULT '\x7067736f6469756d',
  name text UNIQUE,
  associated_data text DEFAULT 'associated',
  raw_key bytea,
  raw_key_nonce bytea,
  parent_key uuid REFERENCES pgsodium.key (id),
  comment text,
  user_data text,
  CONSTRAINT pgsodium_raw CHECK (
    CASE WHEN raw_key IS NOT NULL THEN key_id IS NULL AND key_context IS NULL AND parent_key IS NOT NULL
         ELSE key_id IS NOT NULL AND key_context IS NOT NULL AND parent_key IS NULL END)
);

CREATE VIEW pgsodium.valid_key AS
  SELECT id, name, status, key_type, key_id, key_context, created, expires, associated_data
  FROM pgsodium.key
  WHERE status IN ('valid', 'default')
    AND CASE WHEN expires IS NULL THEN true ELSE expires > now() END;

CREATE FUNCTION pgsodium.create_key(
  key_type pgsodium.key_type DEFAULT 'aead-det',
  name text DEFAULT NULL,
  raw_key bytea DEFAULT NULL,
  raw_key_nonce bytea DEFAULT NULL,
  parent_key uuid DEFAULT NULL,
  key_context bytea DEFAULT '\x7067736f6469756d',
  expires timestamp with time zone DEFAULT NULL,
  associated_data text DEFAULT ''
) RETURNS pgsodium.valid_key
LANGUAGE plpgsql
AS $fn$
DECLARE
  new_key pgsodium.key;
  valid pgsodium.valid_key;
BEGIN
  IF raw_key IS NOT NULL THEN
    -- pgsodium stores a raw key encrypted with its parent key (aead-det): not emulated.
    PERFORM pgsodium._not_emulated('create_key', 'a raw key encrypted under a parent key (libsodium''s XChaCha20-SIV)');
  END IF;
  INSERT INTO pgsodium.key (key_type, name, raw_key, raw_key_nonce, parent_key, key_context, expires, associated_data)
  VALUES (create_key.key_type, create_key.name, NULL, NULL, NULL, create_key.key_context,
          create_key.expires, create_key.associated_data)
  RETURNING * INTO new_key;
  SELECT * INTO valid FROM pgsodium.valid_key v WHERE v.id = new_key.id;
  RETURN valid;
END
$fn$;

-- The platform makes postgres a member of the three roles (with admin option) and
-- service_role a key holder.
DO $members$
DECLARE
  g record;
BEGIN
  FOR g IN SELECT * FROM (VALUES ('pgsodium_keyiduser', 'postgres', true), ('pgsodium_keyholder', 'postgres', true),
                                 ('pgsodium_keymaker', 'postgres', true), ('pgsodium_keyholder', 'service_role', false)) AS t(r, member, admin)
  LOOP
    IF EXISTS (SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = g.member)
       AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_auth_members m
                       WHERE m.roleid = g.r::regrole AND m.member = g.member::regrole) THEN
      EXECUTE format('GRANT %I TO %I%s', g.r, g.member, CASE WHEN g.admin THEN ' WITH ADMIN OPTION' ELSE '' END);
    END IF;
  END LOOP;
END
$members$;

GRANT USAGE ON SCHEMA pgsodium TO pgsodium_keyiduser;
GRANT SELECT ON pgsodium.valid_key TO pgsodium_keyiduser;
GRANT SELECT, INSERT, UPDATE, DELETE ON pgsodium.key TO pgsodium_keymaker;
GRANT USAGE ON SEQUENCE pgsodium.key_key_id_seq TO pgsodium_keymaker;

-- What needs libsodium's ciphers, curves or the server root key.
CREATE FUNCTION pgsodium.crypto_secretbox(message bytea, nonce bytea, key bytea) RETURNS bytea
LANGUAGE plpgsql
AS $fn$ BEGIN PERFORM pgsodium._not_emulated('crypto_secretbox', 'libsodium''s XSalsa20-Poly1305'); RETURN NULL; END $fn$;

CREATE FUNCTION pgsodium.crypto_secretbox(message bytea, nonce bytea, key_id bigint, context bytea DEFAULT 'pgsodium') RETURNS bytea
LANGUAGE plpgsql
AS $fn$ BEGIN PERFORM pgsodium._not_emulated('crypto_secretbox', 'keys derived from the server root key'); RETURN NULL; END $fn$;

CREATE FUNCTION pgsodium.crypto_secretbox(message bytea, nonce bytea, key_uuid uuid) RETURNS bytea
LANGUAGE plpgsql
AS $fn$ BEGIN PERFORM pgsodium._not_emulated('crypto_secretbox', 'keys derived from the server root key'); RETURN NULL; END $fn$;

CREATE FUNCTION pgsodium.crypto_secretbox_open(ciphertext bytea, nonce bytea, key bytea) RETURNS bytea
LANGUAGE plpgsql
AS $fn$ BEGIN PERFORM pgsodium._not_emulated('crypto_secretbox_open', 'libsodium''s XSalsa20-Poly1305'); RETURN NULL; END $fn$;

CREATE FUNCTION pgsodium.crypto_secretbox_open(message bytea, nonce bytea, key_id bigint, context bytea DEFAULT 'pgsodium') RETURNS bytea
LANGUAGE plpgsql
AS $fn$ BEGIN PERFORM pgsodium._not_emulated('crypto_secretbox_open', 'keys derived from the server root key'); RETURN NULL; END $fn$;

CREATE FUNCTION pgsodium.crypto_secretbox_open(message bytea, nonce bytea, key_uuid uuid) RETURNS bytea
LANGUAGE plpgsql
AS $fn$ BEGIN PERFORM pgsodium._not_emulated('crypto_secretbox_open', 'keys derived from the server root key'); RETURN NULL; END $fn$;

CREATE FUNCTION pgsodium.crypto_aead_det_encrypt(message bytea, additional bytea, key bytea, nonce bytea DEFAULT NULL) RETURNS bytea
LANGUAGE plpgsql
AS $fn$ BEGIN PERFORM pgsodium._not_emulated('crypto_aead_det_encrypt', 'libsodium''s XChaCha20-SIV'); RETURN NULL; END $fn$;

CREATE FUNCTION pgsodium.crypto_aead_det_encrypt(message bytea, additional bytea, key_id bigint, context bytea DEFAULT 'pgsodium', nonce bytea DEFAULT NULL) RETURNS bytea
LANGUAGE plpgsql
AS $fn$ BEGIN PERFORM pgsodium._not_emulated('crypto_aead_det_encrypt', 'keys derived from the server root key'); RETURN NULL; END $fn$;

CREATE FUNCTION pgsodium.crypto_aead_det_encrypt(message bytea, additional bytea, key_uuid uuid) RETURNS bytea
LANGUAGE plpgsql
AS $fn$ BEGIN PERFORM pgsodium._not_emulated('crypto_aead_det_encrypt', 'keys derived from the server root key'); RETURN NULL; END $fn$;

CREATE FUNCTION pgsodium.crypto_aead_det_encrypt(message bytea, additional bytea, key_uuid uuid, nonce bytea) RETURNS bytea
LANGUAGE plpgsql
AS $fn$ BEGIN PERFORM pgsodium._not_emulated('crypto_aead_det_encrypt', 'keys derived from the server root key'); RETURN NULL; END $fn$;

CREATE FUNCTION pgsodium.crypto_aead_det_decrypt(message bytea, additional bytea, key bytea, nonce bytea DEFAULT NULL) RETURNS bytea
LANGUAGE plpgsql
AS $fn$ BEGIN PERFORM pgsodium._not_emulated('crypto_aead_det_decrypt', 'libsodium''s XChaCha20-SIV'); RETURN NULL; END $fn$;

CREATE FUNCTION pgsodium.crypto_aead_det_decrypt(message bytea, additional bytea, key_id bigint, context bytea DEFAULT 'pgsodium', nonce bytea DEFAULT NULL) RETURNS bytea
LANGUAGE plpgsql
AS $fn$ BEGIN PERFORM pgsodium._not_emulated('crypto_aead_det_decrypt', 'keys derived from the server root key'); RETURN NULL; END $fn$;

CREATE FUNCTION pgsodium.crypto_aead_det_decrypt(message bytea, additional bytea, key_uuid uuid) RETURNS bytea
LANGUAGE plpgsql
AS $fn$ BEGIN PERFORM pgsodium._not_emulated('crypto_aead_det_decrypt', 'keys derived from the server root key'); RETURN NULL; END $fn$;

CREATE FUNCTION pgsodium.crypto_aead_det_decrypt(message bytea, additional bytea, key_uuid uuid, nonce bytea) RETURNS bytea
LANGUAGE plpgsql
AS $fn$ BEGIN PERFORM pgsodium._not_emulated('crypto_aead_det_decrypt', 'keys derived from the server root key'); RETURN NULL; END $fn$;

CREATE FUNCTION pgsodium.crypto_aead_ietf_encrypt(message bytea, additional bytea, nonce bytea, key bytea) RETURNS bytea
LANGUAGE plpgsql
AS $fn$ BEGIN PERFORM pgsodium._not_emulated('crypto_aead_ietf_encrypt', 'libsodium''s ChaCha20-Poly1305'); RETURN NULL; END $fn$;

CREATE FUNCTION pgsodium.crypto_aead_ietf_encrypt(message bytea, additional bytea, nonce bytea, key_id bigint, context bytea DEFAULT 'pgsodium') RETURNS bytea
LANGUAGE plpgsql
AS $fn$ BEGIN PERFORM pgsodium._not_emulated('crypto_aead_ietf_encrypt', 'keys derived from the server root key'); RETURN NULL; END $fn$;

CREATE FUNCTION pgsodium.crypto_aead_ietf_encrypt(message bytea, additional bytea, nonce bytea, key_uuid uuid) RETURNS bytea
LANGUAGE plpgsql
AS $fn$ BEGIN PERFORM pgsodium._not_emulated('crypto_aead_ietf_encrypt', 'keys derived from the server root key'); RETURN NULL; END $fn$;

CREATE FUNCTION pgsodium.crypto_aead_ietf_decrypt(message bytea, additional bytea, nonce bytea, key bytea) RETURNS bytea
LANGUAGE plpgsql
AS $fn$ BEGIN PERFORM pgsodium._not_emulated('crypto_aead_ietf_decrypt', 'libsodium''s ChaCha20-Poly1305'); RETURN NULL; END $fn$;

CREATE FUNCTION pgsodium.crypto_aead_ietf_decrypt(message bytea, additional bytea, nonce bytea, key_id bigint, context bytea DEFAULT 'pgsodium') RETURNS bytea
LANGUAGE plpgsql
AS $fn$ BEGIN PERFORM pgsodium._not_emulated('crypto_aead_ietf_decrypt', 'keys derived from the server root key'); RETURN NULL; END $fn$;

CREATE FUNCTION pgsodium.crypto_aead_ietf_decrypt(message bytea, additional bytea, nonce bytea, key_uuid uuid) RETURNS bytea
LANGUAGE plpgsql
AS $fn$ BEGIN PERFORM pgsodium._not_emulated('crypto_aead_ietf_decrypt', 'keys derived from the server root key'); RETURN NULL; END $fn$;

CREATE FUNCTION pgsodium.crypto_box(message bytea, nonce bytea, public bytea, secret bytea) RETURNS bytea
LANGUAGE plpgsql
AS $fn$ BEGIN PERFORM pgsodium._not_emulated('crypto_box', 'libsodium''s X25519 boxes'); RETURN NULL; END $fn$;

CREATE FUNCTION pgsodium.crypto_box_open(ciphertext bytea, nonce bytea, public bytea, secret bytea) RETURNS bytea
LANGUAGE plpgsql
AS $fn$ BEGIN PERFORM pgsodium._not_emulated('crypto_box_open', 'libsodium''s X25519 boxes'); RETURN NULL; END $fn$;

CREATE FUNCTION pgsodium.crypto_box_seal(message bytea, public_key bytea) RETURNS bytea
LANGUAGE plpgsql
AS $fn$ BEGIN PERFORM pgsodium._not_emulated('crypto_box_seal', 'libsodium''s X25519 boxes'); RETURN NULL; END $fn$;

CREATE FUNCTION pgsodium.crypto_box_seal_open(ciphertext bytea, public_key bytea, secret_key bytea) RETURNS bytea
LANGUAGE plpgsql
AS $fn$ BEGIN PERFORM pgsodium._not_emulated('crypto_box_seal_open', 'libsodium''s X25519 boxes'); RETURN NULL; END $fn$;

CREATE FUNCTION pgsodium.crypto_box_new_keypair() RETURNS pgsodium.crypto_box_keypair
LANGUAGE plpgsql
AS $fn$ BEGIN PERFORM pgsodium._not_emulated('crypto_box_new_keypair', 'libsodium''s X25519 boxes'); RETURN NULL; END $fn$;

CREATE FUNCTION pgsodium.crypto_box_new_seed() RETURNS bytea
LANGUAGE plpgsql
AS $fn$ BEGIN PERFORM pgsodium._not_emulated('crypto_box_new_seed', 'libsodium''s X25519 boxes'); RETURN NULL; END $fn$;

CREATE FUNCTION pgsodium.crypto_box_seed_new_keypair(seed bytea) RETURNS pgsodium.crypto_box_keypair
LANGUAGE plpgsql
AS $fn$ BEGIN PERFORM pgsodium._not_emulated('crypto_box_seed_new_keypair', 'libsodium''s X25519 boxes'); RETURN NULL; END $fn$;

CREATE FUNCTION pgsodium.crypto_sign(message bytea, key bytea) RETURNS bytea
LANGUAGE plpgsql
AS $fn$ BEGIN PERFORM pgsodium._not_emulated('crypto_sign', 'libsodium''s Ed25519 signatures'); RETURN NULL; END $fn$;

CREATE FUNCTION pgsodium.crypto_sign_open(signed_message bytea, key bytea) RETURNS bytea
LANGUAGE plpgsql
AS $fn$ BEGIN PERFORM pgsodium._not_emulated('crypto_sign_open', 'libsodium''s Ed25519 signatures'); RETURN NULL; END $fn$;

CREATE FUNCTION pgsodium.crypto_sign_detached(message bytea, key bytea) RETURNS bytea
LANGUAGE plpgsql
AS $fn$ BEGIN PERFORM pgsodium._not_emulated('crypto_sign_detached', 'libsodium''s Ed25519 signatures'); RETURN NULL; END $fn$;

CREATE FUNCTION pgsodium.crypto_sign_verify_detached(sig bytea, message bytea, key bytea) RETURNS boolean
LANGUAGE plpgsql
AS $fn$ BEGIN PERFORM pgsodium._not_emulated('crypto_sign_verify_detached', 'libsodium''s Ed25519 signatures'); RETURN NULL; END $fn$;

CREATE FUNCTION pgsodium.crypto_sign_new_keypair() RETURNS pgsodium.crypto_sign_keypair
LANGUAGE plpgsql
AS $fn$ BEGIN PERFORM pgsodium._not_emulated('crypto_sign_new_keypair', 'libsodium''s Ed25519 signatures'); RETURN NULL; END $fn$;

CREATE FUNCTION pgsodium.crypto_sign_new_seed() RETURNS bytea
LANGUAGE plpgsql
AS $fn$ BEGIN PERFORM pgsodium._not_emulated('crypto_sign_new_seed', 'libsodium''s Ed25519 signatures'); RETURN NULL; END $fn$;

CREATE FUNCTION pgsodium.crypto_sign_seed_new_keypair(seed bytea) RETURNS pgsodium.crypto_sign_keypair
LANGUAGE plpgsql
AS $fn$ BEGIN PERFORM pgsodium._not_emulated('crypto_sign_seed_new_keypair', 'libsodium''s Ed25519 signatures'); RETURN NULL; END $fn$;

CREATE FUNCTION pgsodium.crypto_generichash(message bytea, key bytea DEFAULT NULL) RETURNS bytea
LANGUAGE plpgsql
AS $fn$ BEGIN PERFORM pgsodium._not_emulated('crypto_generichash', 'libsodium''s BLAKE2b'); RETURN NULL; END $fn$;

CREATE FUNCTION pgsodium.crypto_generichash(message bytea, key bigint, context bytea DEFAULT 'pgsodium') RETURNS bytea
LANGUAGE plpgsql
AS $fn$ BEGIN PERFORM pgsodium._not_emulated('crypto_generichash', 'libsodium''s BLAKE2b'); RETURN NULL; END $fn$;

CREATE FUNCTION pgsodium.crypto_shorthash(message bytea, key bytea) RETURNS bytea
LANGUAGE plpgsql
AS $fn$ BEGIN PERFORM pgsodium._not_emulated('crypto_shorthash', 'libsodium''s SipHash'); RETURN NULL; END $fn$;

CREATE FUNCTION pgsodium.crypto_pwhash(password bytea, salt bytea) RETURNS bytea
LANGUAGE plpgsql
AS $fn$ BEGIN PERFORM pgsodium._not_emulated('crypto_pwhash', 'libsodium''s Argon2'); RETURN NULL; END $fn$;

CREATE FUNCTION pgsodium.crypto_pwhash_str(password bytea) RETURNS bytea
LANGUAGE plpgsql
AS $fn$ BEGIN PERFORM pgsodium._not_emulated('crypto_pwhash_str', 'libsodium''s Argon2'); RETURN NULL; END $fn$;

CREATE FUNCTION pgsodium.crypto_pwhash_str_verify(hashed_password bytea, password bytea) RETURNS boolean
LANGUAGE plpgsql
AS $fn$ BEGIN PERFORM pgsodium._not_emulated('crypto_pwhash_str_verify', 'libsodium''s Argon2'); RETURN NULL; END $fn$;

CREATE FUNCTION pgsodium.crypto_kdf_derive_from_key(subkey_size bigint, subkey_id bigint, context bytea, primary_key bytea) RETURNS bytea
LANGUAGE plpgsql
AS $fn$ BEGIN PERFORM pgsodium._not_emulated('crypto_kdf_derive_from_key', 'keys derived from the server root key'); RETURN NULL; END $fn$;

CREATE FUNCTION pgsodium.crypto_kdf_derive_from_key(subkey_size integer, subkey_id bigint, context bytea, primary_key uuid) RETURNS bytea
LANGUAGE plpgsql
AS $fn$ BEGIN PERFORM pgsodium._not_emulated('crypto_kdf_derive_from_key', 'keys derived from the server root key'); RETURN NULL; END $fn$;

CREATE FUNCTION pgsodium.derive_key(key_id bigint, key_len integer DEFAULT 32, context bytea DEFAULT 'pgsodium') RETURNS bytea
LANGUAGE plpgsql
AS $fn$ BEGIN PERFORM pgsodium._not_emulated('derive_key', 'keys derived from the server root key'); RETURN NULL; END $fn$;

CREATE FUNCTION pgsodium.randombytes_buf_deterministic(size integer, seed bytea) RETURNS bytea
LANGUAGE plpgsql
AS $fn$ BEGIN PERFORM pgsodium._not_emulated('randombytes_buf_deterministic', 'libsodium''s ChaCha20 generator'); RETURN NULL; END $fn$;

CREATE FUNCTION pgsodium.crypto_auth_hmacsha256(message bytea, key_id bigint, context bytea DEFAULT 'pgsodium') RETURNS bytea
LANGUAGE plpgsql
AS $fn$ BEGIN PERFORM pgsodium._not_emulated('crypto_auth_hmacsha256', 'keys derived from the server root key'); RETURN NULL; END $fn$;

CREATE FUNCTION pgsodium.crypto_auth_hmacsha256(message bytea, key_uuid uuid) RETURNS bytea
LANGUAGE plpgsql
AS $fn$ BEGIN PERFORM pgsodium._not_emulated('crypto_auth_hmacsha256', 'keys derived from the server root key'); RETURN NULL; END $fn$;

CREATE FUNCTION pgsodium.crypto_auth_hmacsha512(message bytea, key_id bigint, context bytea DEFAULT 'pgsodium') RETURNS bytea
LANGUAGE plpgsql
AS $fn$ BEGIN PERFORM pgsodium._not_emulated('crypto_auth_hmacsha512', 'keys derived from the server root key'); RETURN NULL; END $fn$;

CREATE FUNCTION pgsodium.crypto_auth_hmacsha512(message bytea, key_uuid uuid) RETURNS bytea
LANGUAGE plpgsql
AS $fn$ BEGIN PERFORM pgsodium._not_emulated('crypto_auth_hmacsha512', 'keys derived from the server root key'); RETURN NULL; END $fn$;

CREATE FUNCTION pgsodium.crypto_auth(message bytea, key_id bigint, context bytea DEFAULT 'pgsodium') RETURNS bytea
LANGUAGE plpgsql
AS $fn$ BEGIN PERFORM pgsodium._not_emulated('crypto_auth', 'keys derived from the server root key'); RETURN NULL; END $fn$;

CREATE FUNCTION pgsodium.crypto_auth(message bytea, key_uuid uuid) RETURNS bytea
LANGUAGE plpgsql
AS $fn$ BEGIN PERFORM pgsodium._not_emulated('crypto_auth', 'keys derived from the server root key'); RETURN NULL; END $fn$;
