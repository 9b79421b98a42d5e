-- Dates and timestamps: extraction, arithmetic, truncation, formatting, parsing.
SELECT dayofweek(DATE'2024-01-05') AS d
SELECT weekday(DATE'2024-01-05') AS d
SELECT dayofweek(DATE'2024-01-07') AS sun, weekday(DATE'2024-01-07') AS sun_wd, dayofweek(DATE'2024-01-06') AS sat
SELECT id, dayofweek(order_date) AS dow FROM orders
SELECT id, weekday(order_date) AS wd FROM orders
SELECT id, dayofweek(ordered_at) AS dow FROM orders
SELECT id, dayofmonth(order_date) AS dom, dayofyear(order_date) AS doy FROM orders
SELECT id, year(order_date) AS y, month(order_date) AS m, day(order_date) AS d FROM orders
SELECT id, quarter(order_date) AS q FROM orders
SELECT id, weekofyear(order_date) AS w FROM orders
SELECT id, hour(ordered_at) AS h, minute(ordered_at) AS mi, second(ordered_at) AS s FROM orders
SELECT id, hour(shipped_at) AS h FROM orders
SELECT id, extract(YEAR FROM ordered_at) AS y FROM orders
SELECT id, extract(MONTH FROM order_date) AS m FROM orders
SELECT id, extract(DOW FROM order_date) AS dow FROM orders
SELECT id, extract(DAYOFWEEK FROM order_date) AS dow FROM orders
SELECT id, extract(DOY FROM order_date) AS doy FROM orders
SELECT id, extract(WEEK FROM order_date) AS w FROM orders
SELECT id, extract(QUARTER FROM order_date) AS q FROM orders
SELECT id, date_part('day', order_date) AS d FROM orders
SELECT id, date_trunc('MONTH', ordered_at) AS m FROM orders
SELECT id, date_trunc('month', ordered_at) AS m FROM orders
SELECT id, date_trunc('YEAR', ordered_at) AS y FROM orders
SELECT id, date_trunc('QUARTER', ordered_at) AS q FROM orders
SELECT id, date_trunc('WEEK', ordered_at) AS w FROM orders
SELECT id, date_trunc('DAY', ordered_at) AS d FROM orders
SELECT id, date_trunc('HOUR', ordered_at) AS h FROM orders
SELECT id, date_trunc('MM', ordered_at) AS m FROM orders
SELECT id, date_trunc('MONTH', order_date) AS m FROM orders
SELECT id, trunc(order_date, 'MM') AS m FROM orders
SELECT id, trunc(order_date, 'YEAR') AS y FROM orders
SELECT id, trunc(order_date, 'QUARTER') AS q FROM orders
SELECT id, trunc(order_date, 'WEEK') AS w FROM orders
SELECT date_trunc('MONTH', ordered_at) AS month, count(*) AS orders FROM orders GROUP BY 1 ORDER BY 1
SELECT date_trunc('WEEK', order_date) AS wk, sum(amount) AS total FROM orders GROUP BY 1 ORDER BY 1
SELECT id, date_format(ordered_at, 'yyyy-MM-dd') AS d FROM orders
SELECT id, date_format(ordered_at, 'yyyy-MM-dd HH:mm:ss') AS d FROM orders
SELECT id, date_format(ordered_at, 'MMM d, yyyy') AS d FROM orders
SELECT id, date_format(ordered_at, 'EEEE') AS d FROM orders
SELECT id, date_format(ordered_at, 'EEE') AS d FROM orders
SELECT id, date_format(order_date, 'yyyyMM') AS d FROM orders
SELECT id, date_format(ordered_at, 'hh:mm a') AS d FROM orders
SELECT id, date_format(order_date, 'MMMM') AS d FROM orders
SELECT id, date_format(ordered_at, 'yyyy-MM-dd\'T\'HH:mm') AS d FROM orders
SELECT id, datediff(DATE'2024-12-31', order_date) AS days FROM orders
SELECT id, datediff(order_date, DATE'2024-01-01') AS days FROM orders
SELECT id, datediff(shipped_at, ordered_at) AS days FROM orders
SELECT id, date_diff(DATE'2024-12-31', order_date) AS days FROM orders
SELECT id, add_months(order_date, 1) AS next_month FROM orders
SELECT id, add_months(order_date, -1) AS prev_month FROM orders
SELECT id, add_months(order_date, 12) AS next_year FROM orders
SELECT id, date_add(order_date, 30) AS d FROM orders
SELECT id, date_sub(order_date, 7) AS d FROM orders
SELECT id, order_date + 1 AS d FROM orders
SELECT id, order_date - INTERVAL 1 DAY AS d FROM orders
SELECT id, ordered_at + INTERVAL 2 HOURS AS t FROM orders
SELECT id, ordered_at - INTERVAL 30 MINUTES AS t FROM orders
SELECT id, dateadd(DAY, 3, order_date) AS d FROM orders
SELECT id, timestampadd(HOUR, 5, ordered_at) AS t FROM orders
SELECT id, timestampdiff(HOUR, ordered_at, shipped_at) AS h FROM orders
SELECT id, timestampdiff(DAY, order_date, DATE'2024-12-25') AS d FROM orders
SELECT id, timestampdiff(MONTH, order_date, DATE'2024-12-25') AS m FROM orders
SELECT id, months_between(DATE'2024-12-31', order_date) AS m FROM orders
SELECT id, last_day(order_date) AS d FROM orders
SELECT id, next_day(order_date, 'MON') AS d FROM orders
SELECT id, to_date(ordered_at) AS d FROM orders
SELECT to_date('2024-03-15') AS d
SELECT to_date('15/03/2024', 'dd/MM/yyyy') AS d
SELECT to_date('2024-03-15 10:20:30') AS d
SELECT to_timestamp('2024-03-15 10:20:30') AS t
SELECT to_timestamp('15.03.2024 10:20', 'dd.MM.yyyy HH:mm') AS t
SELECT try_to_timestamp('not a time') AS t
SELECT try_to_timestamp('2024-03-15', 'yyyy-MM-dd') AS t
SELECT CAST('2024-03-15' AS DATE) AS d
SELECT CAST('2024-03-15 10:20:30' AS TIMESTAMP) AS t
SELECT CAST(DATE'2024-03-15' AS TIMESTAMP) AS t
SELECT CAST(TIMESTAMP'2024-03-15 10:20:30' AS DATE) AS d
SELECT id, CAST(ordered_at AS STRING) AS s FROM orders
SELECT id, CAST(order_date AS STRING) AS s FROM orders
SELECT id, CAST(shipped_at AS STRING) AS s FROM orders
SELECT make_date(2024, 2, 29) AS d
SELECT make_timestamp(2024, 2, 29, 13, 45, 30.5) AS t
SELECT id, unix_timestamp(ordered_at) AS u FROM orders
SELECT unix_timestamp('2024-03-15 10:20:30') AS u
SELECT from_unixtime(1710498030) AS t
SELECT from_unixtime(1710498030, 'yyyy-MM-dd') AS t
SELECT timestamp_seconds(1710498030) AS t
SELECT id, unix_date(order_date) AS u FROM orders
SELECT date_from_unix_date(19797) AS d
SELECT id, order_date BETWEEN DATE'2024-02-01' AND DATE'2024-02-29' AS feb FROM orders
SELECT id FROM orders WHERE ordered_at >= TIMESTAMP'2024-02-01 00:00:00' AND ordered_at < TIMESTAMP'2024-03-01 00:00:00'
SELECT id FROM orders WHERE order_date >= '2024-03-01'
SELECT id FROM orders WHERE year(order_date) = 2024 AND month(order_date) = 2
SELECT min(order_date) AS first, max(ordered_at) AS last FROM orders
SELECT year(order_date) AS y, count(*) AS n FROM orders GROUP BY year(order_date)
SELECT id, date_trunc('MINUTE', ordered_at) AS m FROM orders
SELECT id, from_utc_timestamp(ordered_at, 'Europe/Berlin') AS local FROM orders
SELECT id, to_utc_timestamp(shipped_at, 'America/New_York') AS utc FROM orders
SELECT id, convert_timezone('UTC', 'Asia/Tokyo', shipped_at) AS tokyo FROM orders
SELECT id, dayname(order_date) AS d FROM orders
SELECT id, monthname(order_date) AS m FROM orders
