-- Aggregates, GROUP BY, HAVING, ROLLUP/CUBE, DISTINCT.
SELECT count(*) AS n FROM orders
SELECT count(amount) AS n FROM orders
SELECT count(DISTINCT customer_id) AS n FROM orders
SELECT count(DISTINCT status, customer_id) AS n FROM orders
SELECT approx_count_distinct(customer_id) AS n FROM orders
SELECT sum(amount) AS s, avg(amount) AS a, min(amount) AS mi, max(amount) AS ma FROM orders
SELECT sum(quantity) AS s, avg(quantity) AS a FROM orders
SELECT avg(discount) AS a FROM orders
SELECT status, count(*) AS n FROM orders GROUP BY status
SELECT status, sum(amount) AS total FROM orders GROUP BY status ORDER BY total DESC NULLS LAST
SELECT status, count(*) AS n FROM orders GROUP BY status HAVING count(*) > 1
SELECT customer_id, sum(amount) AS spent FROM orders GROUP BY customer_id ORDER BY spent DESC NULLS LAST LIMIT 3
SELECT customer_id, max(order_date) AS last_order FROM orders GROUP BY customer_id
SELECT c.name, count(o.id) AS orders FROM customers c LEFT JOIN orders o ON o.customer_id = c.id GROUP BY c.name
SELECT c.country, sum(o.amount) AS total FROM orders o JOIN customers c ON o.customer_id = c.id GROUP BY c.country
SELECT country, count(*) AS n FROM customers GROUP BY country ORDER BY n DESC, country
SELECT country, avg(score) AS a FROM customers GROUP BY country
SELECT country, vip, count(*) AS n FROM customers GROUP BY country, vip
SELECT country, vip, count(*) AS n FROM customers GROUP BY ROLLUP (country, vip)
SELECT country, vip, count(*) AS n FROM customers GROUP BY CUBE (country, vip)
SELECT country, vip, count(*) AS n FROM customers GROUP BY GROUPING SETS ((country), (vip), ())
SELECT country, grouping(country) AS g, count(*) AS n FROM customers GROUP BY ROLLUP (country)
SELECT region, sum(revenue) AS r FROM sales GROUP BY ALL
SELECT array_sort(collect_list(name)) AS names FROM customers
SELECT array_sort(collect_set(country)) AS countries FROM customers
SELECT size(collect_list(email)) AS n FROM customers
SELECT country, array_sort(collect_list(name)) AS names FROM customers GROUP BY country
SELECT customer_id, array_sort(collect_set(status)) AS statuses FROM orders GROUP BY customer_id
SELECT collect_list(name) AS names FROM (SELECT name FROM customers WHERE id < 4 ORDER BY id)
SELECT array_agg(sku) AS skus FROM (SELECT sku FROM items WHERE order_id = 1 ORDER BY sku)
SELECT first(name) AS f, last(name) AS l FROM (SELECT name FROM customers ORDER BY id)
SELECT first_value(name) AS f FROM (SELECT name FROM customers ORDER BY id)
SELECT any_value(country) IS NOT NULL AS x FROM customers WHERE country = 'DE'
SELECT max_by(name, score) AS best, min_by(name, score) AS worst FROM customers
SELECT max_by(id, amount) AS biggest_order FROM orders
SELECT percentile(score, 0.5) AS p FROM customers
SELECT percentile_approx(quantity, 0.5) AS p FROM orders
SELECT median(quantity) AS m FROM orders
SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY quantity) AS p FROM orders
SELECT percentile_disc(0.5) WITHIN GROUP (ORDER BY quantity) AS p FROM orders
SELECT mode(customer_id) AS m FROM orders
SELECT bool_and(vip) AS a, bool_or(vip) AS o FROM customers
SELECT every(score > 0) AS e, some(score > 4) AS s FROM customers
SELECT bit_or(quantity) AS b FROM orders
SELECT sum(DISTINCT quantity) AS s FROM orders
SELECT avg(DISTINCT quantity) AS a FROM orders
SELECT count(*) FILTER (WHERE status = 'paid') AS paid FROM orders
SELECT sum(amount) FILTER (WHERE discount > 0) AS discounted FROM orders
SELECT DISTINCT status FROM orders
SELECT DISTINCT country, vip FROM customers
SELECT status, count(*) AS n FROM orders GROUP BY 1 ORDER BY 2 DESC, 1
SELECT year(order_date) AS y, month(order_date) AS m, sum(amount) AS total FROM orders GROUP BY 1, 2 ORDER BY 1, 2
SELECT o.id, sum(i.qty * i.unit_price) AS total FROM orders o JOIN items i ON i.order_id = o.id GROUP BY o.id
SELECT sku, sum(qty) AS qty FROM items GROUP BY sku ORDER BY qty DESC, sku LIMIT 2
SELECT sum(amount) / count(*) AS avg_all FROM orders
SELECT CAST(avg(quantity) AS DECIMAL(10,2)) AS a FROM orders
SELECT round(avg(amount), 2) AS a FROM orders
SELECT sum(revenue) AS r FROM sales WHERE region = 'nowhere'
SELECT count(*) AS n FROM sales WHERE region = 'nowhere'
SELECT max(revenue) AS m FROM sales WHERE region = 'nowhere'
SELECT region, count(revenue) AS n, count(*) AS rows FROM sales GROUP BY region
SELECT kurtosis(score) AS k, skewness(score) AS s FROM customers
SELECT covar_pop(n, f) AS c FROM numbers WHERE n < 100
SELECT regr_slope(revenue, year) AS s FROM sales
SELECT histogram_numeric(quantity, 2) IS NOT NULL AS h FROM orders
SELECT count(*) AS n, count(1) AS m, count(id) AS k FROM orders
SELECT customer_id, count(*) AS n FROM orders GROUP BY customer_id HAVING sum(amount) > 20
SELECT listagg(name, ', ') WITHIN GROUP (ORDER BY name) AS names FROM customers
SELECT min(name) AS a, max(name) AS b FROM customers
SELECT min(vip) AS a, max(vip) AS b FROM customers
SELECT sum(big) AS s FROM numbers WHERE big < 100
