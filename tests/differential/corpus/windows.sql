-- Window functions and QUALIFY.
SELECT id, customer_id, row_number() OVER (PARTITION BY customer_id ORDER BY id) AS rn FROM orders
SELECT id, rank() OVER (ORDER BY quantity) AS r FROM orders
SELECT id, dense_rank() OVER (ORDER BY quantity DESC) AS r FROM orders
SELECT id, percent_rank() OVER (ORDER BY id) AS p FROM orders
SELECT id, cume_dist() OVER (ORDER BY id) AS c FROM orders
SELECT id, ntile(3) OVER (ORDER BY id) AS t FROM orders
SELECT id, lag(amount) OVER (ORDER BY id) AS prev FROM orders
SELECT id, lag(amount, 2, 0) OVER (ORDER BY id) AS prev FROM orders
SELECT id, lead(amount) OVER (ORDER BY id) AS next FROM orders
SELECT id, lead(status, 1, 'none') OVER (PARTITION BY customer_id ORDER BY id) AS next FROM orders
SELECT id, first_value(id) OVER (PARTITION BY customer_id ORDER BY id) AS f FROM orders
SELECT id, last_value(id) OVER (PARTITION BY customer_id ORDER BY id ROWS BETWEEN UNBOUNDED PRECEDING AND UNBOUNDED FOLLOWING) AS l FROM orders
SELECT id, last_value(id) OVER (PARTITION BY customer_id ORDER BY id) AS l FROM orders
SELECT id, nth_value(id, 2) OVER (ORDER BY id) AS n FROM orders
SELECT id, sum(amount) OVER (ORDER BY id) AS running FROM orders
SELECT id, sum(amount) OVER (PARTITION BY customer_id) AS per_customer FROM orders
SELECT id, sum(amount) OVER () AS total FROM orders
SELECT id, avg(amount) OVER (ORDER BY id ROWS BETWEEN 1 PRECEDING AND 1 FOLLOWING) AS moving FROM orders
SELECT id, count(*) OVER (PARTITION BY status) AS n FROM orders
SELECT id, max(amount) OVER (PARTITION BY customer_id) AS m FROM orders
SELECT id, min(order_date) OVER (PARTITION BY customer_id) AS first FROM orders
SELECT id, sum(quantity) OVER (ORDER BY order_date RANGE BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) AS s FROM orders
SELECT id, amount / sum(amount) OVER () AS share FROM orders
SELECT id, round(100 * amount / sum(amount) OVER (), 2) AS pct FROM orders
SELECT id, row_number() OVER (ORDER BY amount DESC NULLS LAST) AS rn FROM orders
SELECT id, rank() OVER (PARTITION BY status ORDER BY amount DESC) AS r FROM orders
SELECT id, customer_id FROM orders QUALIFY row_number() OVER (PARTITION BY customer_id ORDER BY id DESC) = 1
SELECT id, amount FROM orders QUALIFY rank() OVER (ORDER BY amount DESC NULLS LAST) <= 3
SELECT id, status, row_number() OVER (PARTITION BY status ORDER BY id) AS rn FROM orders QUALIFY rn = 1
SELECT * FROM (SELECT id, customer_id, row_number() OVER (PARTITION BY customer_id ORDER BY amount DESC) AS rn FROM orders) WHERE rn = 1
SELECT region, year, revenue, sum(revenue) OVER (PARTITION BY region ORDER BY year, quarter) AS cum FROM sales WHERE region <> 'east'
SELECT region, revenue, revenue - lag(revenue) OVER (PARTITION BY region ORDER BY year, quarter) AS delta FROM sales WHERE region <> 'east'
SELECT id, count(*) OVER w AS n FROM orders WINDOW w AS (PARTITION BY customer_id)
SELECT id, collect_list(id) OVER (PARTITION BY customer_id ORDER BY id) AS ids FROM orders
SELECT id, row_number() OVER (ORDER BY id) FROM orders
SELECT id, rank() OVER (ORDER BY quantity) FROM orders
SELECT id, sum(amount) OVER (PARTITION BY customer_id) FROM orders
SELECT id, lag(id) OVER (ORDER BY id) FROM orders
SELECT id, ordered_at, lag(ordered_at) OVER (ORDER BY ordered_at) AS prev FROM orders WHERE ordered_at IS NOT NULL
SELECT id, datediff(order_date, lag(order_date) OVER (PARTITION BY customer_id ORDER BY order_date)) AS gap FROM orders
SELECT id, ntile(2) OVER (PARTITION BY customer_id ORDER BY id) AS half FROM orders
SELECT id, avg(score) OVER (PARTITION BY country) AS a FROM customers
SELECT region, sum(revenue) OVER (ORDER BY revenue ROWS UNBOUNDED PRECEDING) AS s FROM sales WHERE revenue IS NOT NULL
SELECT id, percent_rank() OVER (PARTITION BY country ORDER BY score) AS p FROM customers
