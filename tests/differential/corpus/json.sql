-- JSON strings: get_json_object, the : path operator, from_json, json functions.
SELECT id, get_json_object(payload, '$.customer.name') AS name FROM orders
SELECT id, get_json_object(payload, '$.customer.tier') AS tier FROM orders
SELECT id, get_json_object(payload, '$.items[0].sku') AS sku FROM orders
SELECT id, get_json_object(payload, '$.items[1].qty') AS qty FROM orders
SELECT id, get_json_object(payload, '$.total') AS total FROM orders
SELECT id, get_json_object(payload, '$.items') AS items FROM orders
SELECT id, get_json_object(payload, '$.customer') AS c FROM orders
SELECT id, get_json_object(payload, '$.flags[0]') AS f FROM orders
SELECT id, get_json_object(payload, '$.coupon') AS c FROM orders
SELECT id, get_json_object(payload, '$.missing') AS m FROM orders
SELECT id, get_json_object(payload, '$.items[*].sku') AS skus FROM orders
SELECT id, payload:customer.name AS name FROM orders
SELECT id, payload:customer.tier AS tier FROM orders
SELECT id, payload:items[0].sku AS sku FROM orders
SELECT id, payload:total AS total FROM orders
SELECT id, payload:customer AS c FROM orders
SELECT id, payload:['customer']['name'] AS name FROM orders
SELECT id, payload:total::double AS total FROM orders
SELECT id, CAST(payload:items[0].qty AS INT) AS qty FROM orders
SELECT payload:customer.tier AS tier, count(*) AS n FROM orders GROUP BY payload:customer.tier
SELECT id FROM orders WHERE payload:customer.name = 'Ann'
SELECT id, json_tuple(payload, 'total', 'coupon') FROM orders
SELECT id, from_json(payload, 'customer STRUCT<name: STRING, tier: STRING>') AS j FROM orders
SELECT id, from_json(payload, 'customer STRUCT<name: STRING, tier: STRING>').customer.name AS name FROM orders
SELECT id, from_json(payload, 'total DOUBLE').total AS total FROM orders
SELECT from_json('[1, 2, 3]', 'ARRAY<INT>') AS a
SELECT from_json('{"a": 1, "b": 2}', 'MAP<STRING, INT>') AS m
SELECT id, json_array_length(get_json_object(payload, '$.items')) AS n FROM orders
SELECT id, json_object_keys(payload) AS k FROM orders
SELECT json_array_length('[1, 2, 3]') AS n
SELECT id, schema_of_json('{"a": 1}') AS s FROM orders WHERE id = 1
SELECT to_json(map('a', 1)) AS j
SELECT to_json(array(1, 2)) AS j
SELECT to_json(named_struct('a', 1, 'b', NULL)) AS j
SELECT to_json(named_struct('d', DATE'2024-01-05', 'x', 1.5)) AS j
SELECT id, get_json_object(payload, '$.customer.name') IS NULL AS no_name FROM orders
SELECT get_json_object('{"a": {"b": [10, 20]}}', '$.a.b[1]') AS x
SELECT get_json_object('{"a": "x\\"y"}', '$.a') AS x
SELECT get_json_object('{"a": true}', '$.a') AS x
SELECT get_json_object('{"a": 1.50}', '$.a') AS x
SELECT get_json_object('{"a": null}', '$.a') AS x
