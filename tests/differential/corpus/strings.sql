-- String functions and regular expressions.
SELECT id, upper(name) AS u, lower(name) AS l FROM customers
SELECT id, initcap(name) AS i FROM customers
SELECT id, length(name) AS n, char_length(name) AS c FROM customers
SELECT id, octet_length(name) AS o FROM customers
SELECT id, concat(name, '-', country) AS c FROM customers
SELECT id, name || '@' || country AS c FROM customers
SELECT id, concat_ws('-', name, country, email) AS c FROM customers
SELECT id, substring(name, 2) AS s FROM customers
SELECT id, substring(name, 1, 2) AS s FROM customers
SELECT id, substr(name, -2) AS s FROM customers
SELECT id, substr(name, 0, 2) AS s FROM customers
SELECT id, left(name, 2) AS l, right(name, 2) AS r FROM customers
SELECT n, trim(s) AS t FROM numbers
SELECT id, ltrim('  x  ') AS l, rtrim('  x  ') AS r FROM customers WHERE id = 1
SELECT trim(BOTH 'x' FROM 'xxhixx') AS t
SELECT trim(LEADING 'x' FROM 'xxhixx') AS t
SELECT id, lpad(CAST(id AS STRING), 4, '0') AS p FROM customers
SELECT id, rpad(name, 6, '.') AS p FROM customers
SELECT id, lpad(name, 2, '*') AS p FROM customers
SELECT id, replace(email, 'example', 'ex') AS r FROM customers
SELECT id, translate(name, 'ae', 'AE') AS t FROM customers
SELECT id, reverse(name) AS r FROM customers
SELECT id, repeat(name, 2) AS r FROM customers
SELECT id, instr(email, '@') AS i FROM customers
SELECT id, locate('e', name) AS l FROM customers
SELECT id, locate('e', name, 3) AS l FROM customers
SELECT id, position('e' IN name) AS p FROM customers
SELECT id, split(email, '@') AS parts FROM customers
SELECT id, split(email, '@')[0] AS user FROM customers
SELECT id, split_part(email, '@', 2) AS domain FROM customers
SELECT id, element_at(split(email, '@'), 2) AS domain FROM customers
SELECT id, substring_index(email, '.', 1) AS s FROM customers
SELECT id, substring_index(email, '.', -1) AS s FROM customers
SELECT id, startswith(name, 'A') AS s, endswith(name, 'e') AS e FROM customers
SELECT id, contains(email, 'example') AS c FROM customers
SELECT id FROM customers WHERE name LIKE 'A%'
SELECT id FROM customers WHERE name ILIKE 'a%'
SELECT id FROM customers WHERE email LIKE '%.com'
SELECT id FROM customers WHERE name NOT LIKE '%e%'
SELECT id FROM customers WHERE name RLIKE '^[A-C]'
SELECT id FROM customers WHERE email REGEXP 'example\\.(com|org)$'
SELECT id, regexp_extract(email, '([a-z]+)@', 1) AS u FROM customers
SELECT id, regexp_extract(email, '@(.*)$', 1) AS d FROM customers
SELECT id, regexp_extract(name, '[0-9]+', 0) AS d FROM customers
SELECT id, regexp_replace(email, '[aeiou]', '*') AS r FROM customers
SELECT id, regexp_replace(name, '(\\w+) (\\w+)', '$2 $1') AS r FROM customers
SELECT id, regexp_like(name, 'e') AS r FROM customers
SELECT id, regexp_count(email, 'e') AS n FROM customers
SELECT id, regexp_extract_all(payload, '"sku": "([A-Z0-9]+)"', 1) AS skus FROM orders
SELECT id, regexp_substr(email, '[a-z]+') AS s FROM customers
SELECT id, ascii(name) AS a FROM customers
SELECT chr(65) AS c, char(97) AS d
SELECT id, md5(name) AS h FROM customers
SELECT id, sha2(name, 256) AS h FROM customers
SELECT id, sha1(name) AS h FROM customers
SELECT id, crc32(name) AS h FROM customers
SELECT id, hex(name) AS h FROM customers
SELECT id, base64(CAST(name AS BINARY)) AS b FROM customers
SELECT id, format_number(score, 2) AS f FROM customers
SELECT id, format_string('%s has %d', name, id) AS f FROM customers
SELECT printf('%05d', 42) AS p
SELECT id, nullif(email, '') AS e FROM customers
SELECT id, coalesce(email, 'none') AS e FROM customers
SELECT id, email IS NULL AS missing FROM customers
SELECT id, soundex(name) AS s FROM customers
SELECT id, levenshtein(name, 'Ann') AS d FROM customers
SELECT id, space(2) || name AS s FROM customers
SELECT id, lower(email) = 'dee@example.com' AS same FROM customers
SELECT id, email = 'DEE@Example.com' AS exact FROM customers
SELECT id, name < 'D' AS before_d FROM customers
SELECT string_agg(name, ',') AS s FROM (SELECT name FROM customers ORDER BY id)
SELECT id, btrim('  hi  ') AS t FROM customers WHERE id = 1
SELECT id, overlay(name PLACING 'XX' FROM 2 FOR 1) AS o FROM customers
SELECT id, mask(email) AS m FROM customers
SELECT id, url_encode(email) AS u FROM customers
SELECT parse_url('https://example.com/a/b?x=1&y=2', 'HOST') AS h, parse_url('https://example.com/a/b?x=1&y=2', 'QUERY', 'y') AS q
SELECT id, uuid() IS NOT NULL AS has FROM customers WHERE id = 1
SELECT id, encode(name, 'utf-8') IS NOT NULL AS e FROM customers
SELECT id, sentences('Hello world. Bye now.') AS s FROM customers WHERE id = 1
SELECT n, length(trim(s)) AS n FROM numbers
SELECT id, concat(name, NULL) AS c FROM customers
SELECT id, elt(2, 'a', name, 'c') AS e FROM customers
SELECT id, find_in_set('b', 'a,b,c') AS f FROM customers WHERE id = 1
SELECT upper(status) AS s, count(*) AS n FROM orders GROUP BY upper(status)
SELECT id, collate(name, 'UNICODE_CI') = 'ann' AS ci FROM customers
SELECT id, lower(country) AS c FROM customers ORDER BY id
SELECT id, name FROM customers ORDER BY name
SELECT id, name FROM customers ORDER BY lower(name) DESC
SELECT id, country FROM customers ORDER BY country NULLS FIRST, id
SELECT id, country FROM customers ORDER BY country DESC, id
SELECT id, country FROM customers ORDER BY country, id
