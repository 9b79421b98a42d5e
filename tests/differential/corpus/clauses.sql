-- Joins, subqueries, CTEs, set operations, PIVOT, LATERAL VIEW, LIMIT/OFFSET, VALUES.
SELECT o.id, c.name FROM orders o JOIN customers c ON o.customer_id = c.id
SELECT o.id, c.name FROM orders o LEFT JOIN customers c ON o.customer_id = c.id
SELECT o.id, c.name FROM orders o RIGHT JOIN customers c ON o.customer_id = c.id
SELECT o.id, c.name FROM orders o FULL OUTER JOIN customers c ON o.customer_id = c.id
SELECT o.id FROM orders o LEFT SEMI JOIN customers c ON o.customer_id = c.id
SELECT o.id FROM orders o LEFT ANTI JOIN customers c ON o.customer_id = c.id
SELECT c.id, s.region FROM customers c CROSS JOIN (SELECT DISTINCT region FROM sales) s WHERE c.id < 3
SELECT o.id, i.sku FROM orders o JOIN items i ON i.order_id = o.id AND i.qty > 1
SELECT id, name FROM customers JOIN (SELECT customer_id AS id, count(*) AS n FROM orders GROUP BY customer_id) USING (id)
SELECT * FROM customers NATURAL JOIN (SELECT customer_id AS id, status FROM orders) WHERE id < 3
SELECT a.id, b.id AS other FROM orders a JOIN orders b ON a.customer_id = b.customer_id AND a.id < b.id
WITH big AS (SELECT * FROM orders WHERE amount > 20) SELECT id, amount FROM big
WITH t AS (SELECT customer_id, sum(amount) AS s FROM orders GROUP BY customer_id) SELECT c.name, t.s FROM t JOIN customers c ON c.id = t.customer_id
WITH a AS (SELECT 1 AS x), b AS (SELECT x + 1 AS y FROM a) SELECT * FROM a, b
WITH RECURSIVE r(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM r WHERE n < 5) SELECT n FROM r
SELECT id, (SELECT max(amount) FROM orders) AS top FROM customers WHERE id = 1
SELECT id, (SELECT count(*) FROM orders o WHERE o.customer_id = c.id) AS n FROM customers c
SELECT * FROM (SELECT status, count(*) AS n FROM orders GROUP BY status) WHERE n > 1
SELECT country FROM customers UNION SELECT address.city FROM orders
SELECT country FROM customers UNION ALL SELECT 'XX'
SELECT customer_id FROM orders INTERSECT SELECT id FROM customers
SELECT id FROM customers EXCEPT SELECT customer_id FROM orders
SELECT id FROM customers MINUS SELECT customer_id FROM orders
SELECT customer_id FROM orders INTERSECT ALL SELECT customer_id FROM orders WHERE id > 2
SELECT customer_id FROM orders EXCEPT ALL SELECT customer_id FROM orders WHERE id > 2
SELECT 1 AS x UNION ALL SELECT 2 ORDER BY x DESC
SELECT 1 AS a, 'x' AS b UNION ALL SELECT 2.5, NULL
SELECT id FROM orders ORDER BY id LIMIT 3
SELECT id FROM orders ORDER BY id LIMIT 3 OFFSET 2
SELECT id FROM orders ORDER BY id OFFSET 6
SELECT * FROM sales PIVOT (sum(revenue) FOR quarter IN ('Q1', 'Q2', 'Q3', 'Q4'))
SELECT * FROM (SELECT region, quarter, revenue FROM sales) PIVOT (sum(revenue) FOR quarter IN ('Q1', 'Q2', 'Q3', 'Q4'))
SELECT * FROM (SELECT region, quarter, revenue FROM sales) PIVOT (sum(revenue) AS total FOR quarter IN ('Q1' AS q1, 'Q2' AS q2))
SELECT * FROM (SELECT region, year, revenue FROM sales) PIVOT (max(revenue) FOR year IN (2023, 2024))
SELECT * FROM (SELECT region, quarter, revenue FROM sales) PIVOT (sum(revenue) AS s, count(revenue) AS c FOR quarter IN ('Q1', 'Q4'))
SELECT * FROM (SELECT region, quarter, revenue FROM sales WHERE year = 2023) UNPIVOT (revenue FOR q IN (revenue AS r))
SELECT region, q, v FROM (SELECT region, sum(CASE WHEN quarter = 'Q1' THEN revenue END) AS q1, sum(CASE WHEN quarter = 'Q2' THEN revenue END) AS q2 FROM sales GROUP BY region) UNPIVOT (v FOR q IN (q1, q2))
SELECT id, tag FROM orders LATERAL VIEW explode(tags) t AS tag
SELECT id, tag FROM orders LATERAL VIEW OUTER explode(tags) t AS tag
SELECT id, pos, tag FROM orders LATERAL VIEW posexplode(tags) t AS pos, tag
SELECT id, k, v FROM orders LATERAL VIEW explode(attrs) t AS k, v
SELECT id, t.col FROM orders LATERAL VIEW explode(tags) t
SELECT tag, count(*) AS n FROM orders LATERAL VIEW explode(tags) t AS tag GROUP BY tag
SELECT id, a, b FROM orders LATERAL VIEW explode(tags) x AS a LATERAL VIEW explode(array(1, 2)) y AS b WHERE id = 1
SELECT n, sc FROM numbers LATERAL VIEW explode(scores) t AS sc
SELECT o.id, t.tag FROM orders o, LATERAL explode(o.tags) AS t(tag)
SELECT id, x FROM orders, LATERAL (SELECT id * 2 AS x)
SELECT * FROM VALUES (1, 'a'), (2, 'b')
SELECT col1 FROM VALUES (1), (2)
SELECT * FROM range(3)
SELECT id FROM range(1, 10, 4)
SELECT * FROM orders TABLESAMPLE (100 PERCENT) WHERE id = 1
SELECT id, status FROM orders WHERE id = 1
SELECT * FROM customers WHERE id = 1
SELECT * EXCEPT (payload, attrs, address, tags) FROM orders WHERE id = 2
SELECT c.* FROM customers c WHERE c.id = 2
SELECT id AS order_id, amount AS `total amount` FROM orders WHERE id = 1
SELECT `id`, `status` FROM orders WHERE id = 3
SELECT DISTINCT customer_id FROM orders ORDER BY customer_id NULLS LAST
SELECT id FROM orders WHERE id IN (SELECT order_id FROM items GROUP BY order_id HAVING count(*) > 1)
SELECT c.name, max(o.amount) AS biggest FROM customers c JOIN orders o ON o.customer_id = c.id GROUP BY c.name ORDER BY biggest DESC LIMIT 1
SELECT name FROM customers WHERE id = (SELECT customer_id FROM orders ORDER BY amount DESC NULLS LAST LIMIT 1)
SELECT id FROM orders o WHERE amount > (SELECT avg(amount) FROM orders WHERE customer_id = o.customer_id)
SELECT count(*) AS n FROM orders o JOIN customers c ON o.customer_id = c.id WHERE c.country = 'DE'
SELECT id FROM orders ORDER BY amount DESC NULLS LAST, id LIMIT 2
SELECT id, status FROM orders ORDER BY status NULLS LAST, id
SELECT id FROM orders WHERE status = 'paid' LIMIT 10
SELECT * FROM (SELECT 1 AS a) t1 JOIN (SELECT 1 AS a) t2 USING (a)
SELECT from_csv('1,abc', 'a INT, b STRING') AS r
SELECT id FROM orders WHERE ordered_at > current_timestamp() - INTERVAL 100000 DAYS
SELECT current_date() > DATE'2020-01-01' AS recent
SELECT current_timestamp() IS NOT NULL AS now
SELECT hash(1) AS h
SELECT id, xxhash64(id) AS h FROM orders WHERE id = 1
SELECT monotonically_increasing_id() IS NOT NULL AS x
