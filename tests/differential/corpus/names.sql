-- Names and types of unaliased result columns, as Databricks names them.
SELECT count(*) FROM orders
SELECT count(1) FROM orders
SELECT count(id) FROM orders
SELECT count(DISTINCT customer_id) FROM orders
SELECT sum(amount) FROM orders
SELECT avg(amount) FROM orders
SELECT min(order_date), max(order_date) FROM orders
SELECT sum(quantity) FROM orders
SELECT avg(quantity) FROM orders
SELECT status, count(*) FROM orders GROUP BY status
SELECT upper(name) FROM customers
SELECT lower(name) FROM customers
SELECT length(name) FROM customers
SELECT concat(name, country) FROM customers
SELECT coalesce(email, 'none') FROM customers
SELECT substring(name, 1, 2) FROM customers
SELECT trim(name) FROM customers
SELECT dayofweek(DATE'2024-01-05')
SELECT weekday(DATE'2024-01-05')
SELECT year(order_date) FROM orders
SELECT month(order_date) FROM orders
SELECT date_trunc('MONTH', ordered_at) FROM orders
SELECT date_format(ordered_at, 'yyyy-MM') FROM orders
SELECT to_date(ordered_at) FROM orders
SELECT datediff(DATE'2024-12-31', order_date) FROM orders
SELECT add_months(order_date, 1) FROM orders
SELECT date_add(order_date, 1) FROM orders
SELECT current_date() = current_date()
SELECT 1
SELECT 1, 2
SELECT 'a'
SELECT NULL
SELECT true
SELECT 1.5
SELECT 1 + 2
SELECT id + 1 FROM orders
SELECT amount * 2 FROM orders
SELECT quantity / 2 FROM orders
SELECT -quantity FROM orders
SELECT id = 1 FROM orders
SELECT id > 1 AND id < 4 FROM orders
SELECT NOT vip FROM customers
SELECT id IS NULL FROM orders
SELECT CAST(id AS STRING) FROM orders
SELECT CAST(amount AS DOUBLE) FROM orders
SELECT round(amount, 1) FROM orders
SELECT abs(n) FROM numbers
SELECT CASE WHEN id > 2 THEN 'a' ELSE 'b' END FROM orders
SELECT if(id > 2, 'a', 'b') FROM orders
SELECT size(tags) FROM orders
SELECT tags[0] FROM orders WHERE size(tags) > 0
SELECT attrs['channel'] FROM orders
SELECT address.city FROM orders
SELECT get_json_object(payload, '$.total') FROM orders
SELECT array(1, 2)
SELECT map('a', 1)
SELECT struct(1, 2)
SELECT named_struct('a', 1)
SELECT collect_list(id) FROM (SELECT id FROM orders ORDER BY id)
SELECT array_sort(collect_set(status)) FROM orders
SELECT first(id) FROM (SELECT id FROM orders ORDER BY id)
SELECT max_by(id, amount) FROM orders
SELECT percentile(quantity, 0.5) FROM orders
SELECT stddev(quantity) FROM orders
SELECT row_number() OVER (ORDER BY id) FROM orders
SELECT id, id FROM orders
SELECT o.id, c.id FROM orders o JOIN customers c ON o.customer_id = c.id
SELECT * FROM items WHERE order_id = 1
SELECT split(email, '@') FROM customers
SELECT regexp_extract(email, '@(.*)', 1) FROM customers
SELECT nvl(status, 'x') FROM orders
SELECT greatest(1, 2)
SELECT typeof(amount) FROM orders WHERE id = 1
SELECT current_timestamp() IS NULL
SELECT explode(tags) FROM orders
SELECT `id` FROM orders
SELECT 1 AS `count(*)`
