-- Conditional expressions and NULL handling.
SELECT id, CASE WHEN amount > 50 THEN 'big' WHEN amount > 10 THEN 'mid' ELSE 'small' END AS size FROM orders
SELECT id, CASE status WHEN 'paid' THEN 1 WHEN 'shipped' THEN 2 ELSE 0 END AS code FROM orders
SELECT id, CASE WHEN amount IS NULL THEN 'unknown' END AS flag FROM orders
SELECT id, if(amount > 20, 'high', 'low') AS level FROM orders
SELECT id, coalesce(amount, 0) AS amount FROM orders
SELECT id, coalesce(status, customer_id, 'none') AS x FROM orders
SELECT id, nvl(status, 'unknown') AS s FROM orders
SELECT id, nvl2(status, 'has', 'none') AS s FROM orders
SELECT id, ifnull(discount, 0.0) AS d FROM orders
SELECT id, nullif(quantity, 1) AS q FROM orders
SELECT id, zeroifnull(quantity) AS q FROM orders
SELECT id, nullifzero(discount) AS d FROM orders
SELECT id, isnull(amount) AS a, isnotnull(amount) AS b FROM orders
SELECT id, amount IS NOT NULL AND quantity > 2 AS x FROM orders
SELECT id, status = 'paid' OR status IS NULL AS x FROM orders
SELECT id, NOT vip AS not_vip FROM customers
SELECT id, vip AND score > 4 AS x FROM customers
SELECT id, vip OR score > 4 AS x FROM customers
SELECT id, status <=> NULL AS x FROM orders
SELECT id, status <=> 'paid' AS x FROM orders
SELECT id, status != 'paid' AS x FROM orders
SELECT id, status <> 'paid' AS x FROM orders
SELECT id, equal_null(status, 'paid') AS x FROM orders
SELECT id, status IS DISTINCT FROM 'paid' AS x FROM orders
SELECT id, CASE WHEN discount > 0.1 THEN amount * 0.9 ELSE amount END AS price FROM orders
SELECT id FROM orders WHERE status IN ('paid', 'shipped')
SELECT id FROM orders WHERE status NOT IN ('paid', 'shipped')
SELECT id FROM orders WHERE status IS NULL
SELECT id FROM orders WHERE coalesce(status, '') = ''
SELECT id FROM orders WHERE customer_id IN (SELECT id FROM customers WHERE vip)
SELECT id FROM orders WHERE customer_id NOT IN (SELECT id FROM customers WHERE country = 'DE')
SELECT id FROM orders o WHERE EXISTS (SELECT 1 FROM items i WHERE i.order_id = o.id AND i.qty > 1)
SELECT id FROM orders o WHERE NOT EXISTS (SELECT 1 FROM items i WHERE i.order_id = o.id)
SELECT id, decode(status, 'paid', 'P', 'shipped', 'S', 'other') AS code FROM orders
SELECT count_if(status = 'paid') AS paid FROM orders
SELECT sum(CASE WHEN status = 'paid' THEN amount ELSE 0 END) AS paid_total FROM orders
SELECT id, assert_true(id > 0) AS ok FROM orders WHERE id = 1
SELECT id, CASE WHEN vip THEN 'yes' WHEN NOT vip THEN 'no' ELSE 'unknown' END AS v FROM customers
SELECT id, (amount > 10) = true AS x FROM orders
SELECT NULL = NULL AS a, NULL IS NULL AS b, NULL AND false AS c, NULL OR true AS d
SELECT id, if(vip IS NULL, NULL, vip) AS v FROM customers
SELECT id, CASE WHEN score >= 4 THEN 'A' WHEN score >= 3 THEN 'B' END AS grade FROM customers ORDER BY id
SELECT id, ifnull(country, 'n/a') AS c FROM customers ORDER BY c, id
SELECT id, greatest(amount, 50) AS g FROM orders
