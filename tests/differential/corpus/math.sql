-- Arithmetic, numeric functions, casts between numeric types.
SELECT n, n + 1 AS a, n - 1 AS b, n * 2 AS c FROM numbers WHERE n < 100
SELECT n, n / 2 AS half FROM numbers
SELECT n, n DIV 3 AS q, n % 3 AS r FROM numbers
SELECT n, mod(n, 3) AS m, pmod(n, 3) AS p FROM numbers
SELECT 7 / 2 AS a, 7 DIV 2 AS b, -7 DIV 2 AS c, -7 % 2 AS d
SELECT 1 / 3 AS third
SELECT 10 / 4 AS x
SELECT CAST(10 AS DECIMAL(10,2)) / 4 AS x
SELECT d, d * 2 AS twice FROM numbers
SELECT d, d + 1 AS plus FROM numbers
SELECT d, d / 3 AS third FROM numbers
SELECT d, d * d AS sq FROM numbers
SELECT amount, amount * quantity AS total FROM orders
SELECT id, amount * (1 - discount) AS net FROM orders
SELECT f, round(f) AS r FROM numbers
SELECT round(2.5) AS a, round(3.5) AS b, round(-2.5) AS c
SELECT round(2.345, 2) AS a, round(-2.345, 2) AS b
SELECT bround(2.5) AS a, bround(3.5) AS b
SELECT round(1234.5678, -2) AS a
SELECT id, round(amount, 1) AS r FROM orders
SELECT id, round(amount) AS r FROM orders
SELECT id, round(discount * 100) AS pct FROM orders
SELECT f, ceil(f) AS c, floor(f) AS fl FROM numbers
SELECT d, ceil(d) AS c, floor(d) AS fl FROM numbers
SELECT ceil(2.1) AS a, floor(-2.1) AS b, ceiling(2.0) AS c
SELECT n, abs(n) AS a, sign(n) AS s FROM numbers
SELECT f, abs(f) AS a, signum(f) AS s FROM numbers
SELECT sqrt(16) AS a, cbrt(27) AS b, power(2, 10) AS c, pow(2.0, 0.5) AS d
SELECT exp(1) AS e, ln(10) AS l, log10(1000) AS a, log2(8) AS b, log(2, 8) AS c
SELECT sin(0) AS s, cos(0) AS c, tan(0) AS t, atan2(1, 1) AS a
SELECT pi() AS p, e() AS e
SELECT degrees(pi()) AS d, radians(180) AS r
SELECT greatest(1, 5, 3) AS g, least(1, 5, 3) AS l
SELECT greatest(1, NULL, 3) AS g, least(NULL, 2) AS l
SELECT n, greatest(n, 0) AS g FROM numbers
SELECT CAST(3.9 AS INT) AS a, CAST(-3.9 AS INT) AS b
SELECT CAST('42' AS INT) AS a, CAST(' 7 ' AS INT) AS b
SELECT CAST('3.5' AS DOUBLE) AS a, CAST('1e3' AS DOUBLE) AS b
SELECT CAST(1.5 AS DECIMAL(5,1)) AS a, CAST(2 AS DOUBLE) AS b
SELECT CAST(12.345 AS DECIMAL(5,2)) AS a
SELECT CAST(12.355 AS DECIMAL(5,2)) AS a
SELECT n, CAST(n AS STRING) AS s FROM numbers
SELECT f, CAST(f AS STRING) AS s FROM numbers
SELECT d, CAST(d AS STRING) AS s FROM numbers
SELECT d, CAST(d AS DOUBLE) AS x FROM numbers
SELECT n, CAST(n AS BIGINT) AS b FROM numbers
SELECT CAST(true AS INT) AS a, CAST(0 AS BOOLEAN) AS b
SELECT CAST('true' AS BOOLEAN) AS a, CAST('no' AS BOOLEAN) AS b
SELECT try_cast(s AS INT) AS i FROM numbers
SELECT try_cast(s AS DOUBLE) AS x FROM numbers
SELECT try_cast('2024-02-30' AS DATE) AS d
SELECT try_divide(n, 0) AS x FROM numbers
SELECT try_divide(10, 4) AS x
SELECT try_add(2147483647, 1) AS x
SELECT try_multiply(big, 2) AS x FROM numbers
SELECT try_subtract(5, 3) AS x
SELECT n, n BETWEEN 0 AND 10 AS small FROM numbers
SELECT n, n IN (1, 10) AS picked FROM numbers
SELECT n FROM numbers WHERE n > 0 ORDER BY n
SELECT n FROM numbers ORDER BY n DESC NULLS LAST
SELECT n FROM numbers ORDER BY n NULLS FIRST
SELECT n FROM numbers ORDER BY n
SELECT n FROM numbers ORDER BY n DESC
SELECT 0.1 + 0.2 AS x
SELECT 0.1D + 0.2D AS x
SELECT 1.0 * 3 AS x
SELECT 5 * 1.5 AS x
SELECT 2147483647 + 0L AS x
SELECT 100Y AS a, 1000S AS b, 10L AS c
SELECT typeof(1) AS a, typeof(1L) AS b, typeof(1.5) AS c, typeof(1.5D) AS d
SELECT typeof(n / 2) AS a, typeof(d * 2) AS b FROM numbers WHERE n = 1
SELECT n, bin(n) AS b FROM numbers WHERE n >= 0
SELECT conv('ff', 16, 10) AS c
SELECT hex(255) AS h, unhex('41') IS NOT NULL AS u
SELECT n, n & 3 AS a, n | 4 AS o, n ^ 1 AS x, shiftleft(n, 1) AS s FROM numbers WHERE n BETWEEN 0 AND 100
SELECT factorial(5) AS f
SELECT width_bucket(5.3, 0.2, 10.6, 5) AS w
SELECT isnan(CAST('NaN' AS DOUBLE)) AS a, nanvl(CAST('NaN' AS DOUBLE), 0.0) AS b
SELECT CAST('NaN' AS DOUBLE) = CAST('NaN' AS DOUBLE) AS eq
SELECT 1.0 / 0.5 AS x
SELECT -n AS neg FROM numbers WHERE n BETWEEN 0 AND 100
SELECT positive(-3) AS p, negative(3) AS n
SELECT n, f FROM numbers WHERE f > 1e299
SELECT CAST(1e300 AS FLOAT) AS x
SELECT 9223372036854775807L AS x
SELECT CAST(9.99 AS DECIMAL(38,10)) AS x
SELECT sum(d) AS s, avg(d) AS a FROM numbers
SELECT sum(f) AS s FROM numbers WHERE f < 100
SELECT avg(n) AS a FROM numbers WHERE n < 100
SELECT stddev(score) AS s, variance(score) AS v FROM customers
SELECT stddev_pop(score) AS s, var_pop(score) AS v FROM customers
SELECT corr(n, f) AS c FROM numbers WHERE n < 100
