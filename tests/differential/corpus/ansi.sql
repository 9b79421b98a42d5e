-- ANSI mode: errors Databricks SQL raises (compared error against error) and their try_ forms.
SELECT 1 / 0 AS x
SELECT n / 0 AS x FROM numbers
SELECT n % 0 AS x FROM numbers
SELECT 1 DIV 0 AS x
SELECT CAST(1 AS DECIMAL(5,2)) / 0 AS x
SELECT 1.5D / 0 AS x
SELECT try_divide(1, 0) AS x
SELECT 2147483647 + 1 AS x
SELECT n + 1 AS x FROM numbers
SELECT n * 2 AS x FROM numbers
SELECT big + 1 AS x FROM numbers
SELECT big * 2 AS x FROM numbers
SELECT -big - 2 AS x FROM numbers
SELECT abs(-2147483648) AS x
SELECT sum(big) AS s FROM numbers
SELECT CAST(2147483648 AS INT) AS x
SELECT CAST(300 AS TINYINT) AS x
SELECT CAST(big AS INT) AS x FROM numbers
SELECT CAST(1e20 AS BIGINT) AS x
SELECT CAST(f AS INT) AS x FROM numbers
SELECT CAST(12345.678 AS DECIMAL(5,2)) AS x
SELECT CAST(d AS DECIMAL(3,1)) AS x FROM numbers
SELECT d * 1000 AS x FROM numbers
SELECT CAST('abc' AS INT) AS x
SELECT CAST(s AS INT) AS x FROM numbers
SELECT CAST('3.5' AS INT) AS x
SELECT CAST('' AS INT) AS x
SELECT CAST('abc' AS DOUBLE) AS x
SELECT CAST('abc' AS DECIMAL(5,2)) AS x
SELECT CAST('2024-02-30' AS DATE) AS x
SELECT CAST('not a date' AS DATE) AS x
SELECT CAST('2024-13-01 00:00:00' AS TIMESTAMP) AS x
SELECT CAST('yes' AS BOOLEAN) AS x
SELECT to_date('2024/01/05', 'yyyy-MM-dd') AS x
SELECT to_timestamp('garbage') AS x
SELECT make_date(2024, 2, 30) AS x
SELECT element_at(array(1, 2), 5) AS x
SELECT array(1, 2)[5] AS x
SELECT element_at(map('a', 1), 'b') AS x
SELECT map('a', 1)['b'] AS x
SELECT try_cast('abc' AS INT) AS x
SELECT try_cast(s AS DATE) AS x FROM numbers
SELECT try_add(big, big) AS x FROM numbers
SELECT try_sum(big) AS x FROM numbers
SELECT try_avg(n) AS x FROM numbers
SELECT 'abc' + 1 AS x
SELECT '5' + 1 AS x
SELECT '5' * '2' AS x
SELECT 1 = '1' AS x
SELECT DATE'2024-01-01' = '2024-01-01' AS x
SELECT n FROM numbers WHERE s = 42
SELECT sqrt(-1) AS x
SELECT ln(0) AS x
SELECT log(10, -1) AS x
SELECT power(10, 400) AS x
SELECT 1e308 * 10 AS x
SELECT pmod(5, 0) AS x
SELECT make_timestamp(2024, 1, 1, 25, 0, 0) AS x
SELECT sequence(1, 5, 0) AS x
SELECT repeat('a', -1) AS x
SELECT substring('abc', 10) AS x
SELECT from_json('not json', 'a INT') AS x
SELECT get_json_object('not json', '$.a') AS x
SELECT assert_true(1 > 2) AS x
SELECT raise_error('stop') AS x
SELECT nonexistent_function(1) AS x
SELECT no_such_column FROM orders
SELECT id FROM no_such_table
SELECT id FROM orders GROUP BY status
SELECT CAST(amount AS INT) AS x FROM orders
SELECT CAST(amount AS DECIMAL(3,0)) AS x FROM orders
