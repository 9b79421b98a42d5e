-- Arrays, maps, structs and higher-order functions.
SELECT id, tags FROM orders
SELECT id, size(tags) AS n FROM orders
SELECT id, cardinality(tags) AS n FROM orders
SELECT id, array_size(tags) AS n FROM orders
SELECT id, tags[0] AS first FROM orders WHERE size(tags) > 0
SELECT id, element_at(tags, 1) AS first FROM orders WHERE size(tags) > 0
SELECT id, element_at(tags, -1) AS last FROM orders WHERE size(tags) > 0
SELECT id, try_element_at(tags, 5) AS x FROM orders
SELECT id, array_contains(tags, 'promo') AS promo FROM orders
SELECT id FROM orders WHERE array_contains(tags, 'promo')
SELECT id, array_position(tags, 'promo') AS p FROM orders
SELECT id, array_sort(tags) AS s FROM orders
SELECT id, sort_array(tags) AS s FROM orders
SELECT id, sort_array(tags, false) AS s FROM orders
SELECT id, array_distinct(array_union(tags, array('new'))) AS u FROM orders
SELECT id, array_union(tags, array('x')) AS u FROM orders
SELECT id, array_intersect(tags, array('promo', 'new')) AS i FROM orders
SELECT id, array_except(tags, array('promo')) AS e FROM orders
SELECT id, array_remove(tags, 'promo') AS r FROM orders
SELECT id, array_join(tags, '|') AS j FROM orders
SELECT id, array_join(tags, ',', '?') AS j FROM orders
SELECT id, concat(tags, array('z')) AS c FROM orders
SELECT id, array_append(tags, 'z') AS a FROM orders
SELECT id, array_prepend(tags, 'a') AS a FROM orders
SELECT id, array_max(tags) AS mx, array_min(tags) AS mn FROM orders
SELECT id, slice(tags, 1, 2) AS s FROM orders
SELECT id, arrays_overlap(tags, array('promo')) AS o FROM orders
SELECT id, reverse(tags) AS r FROM orders
SELECT id, flatten(array(tags, array('x'))) AS f FROM orders
SELECT id, array_compact(array(1, NULL, 2)) AS c FROM orders WHERE id = 1
SELECT array(1, 2, 3) AS a
SELECT array() AS a
SELECT array(1, NULL) AS a
SELECT sequence(1, 5) AS s
SELECT sequence(1, 10, 3) AS s
SELECT sequence(DATE'2024-01-01', DATE'2024-01-03', INTERVAL 1 DAY) AS s
SELECT array_repeat('a', 3) AS r
SELECT arrays_zip(array(1, 2), array('a', 'b')) AS z
SELECT shuffle(array(1)) AS s
SELECT n, scores, array_sort(scores) AS s FROM numbers
SELECT n, array_max(scores) AS mx FROM numbers
SELECT n, aggregate(scores, 0, (acc, x) -> acc + coalesce(x, 0)) AS total FROM numbers
SELECT n, reduce(scores, 0, (acc, x) -> acc + coalesce(x, 0)) AS total FROM numbers
SELECT n, transform(scores, x -> x * 10) AS t FROM numbers
SELECT n, transform(scores, (x, i) -> x + i) AS t FROM numbers
SELECT n, filter(scores, x -> x > 2) AS f FROM numbers
SELECT n, filter(scores, x -> x IS NOT NULL) AS f FROM numbers
SELECT n, exists(scores, x -> x > 4) AS e FROM numbers
SELECT n, forall(scores, x -> x > 0) AS a FROM numbers
SELECT id, transform(tags, t -> upper(t)) AS t FROM orders
SELECT id, filter(tags, t -> t LIKE 'p%') AS t FROM orders
SELECT id, array_sort(tags, (a, b) -> CASE WHEN length(a) < length(b) THEN -1 WHEN length(a) > length(b) THEN 1 ELSE 0 END) AS s FROM orders
SELECT zip_with(array(1, 2), array(10, 20), (a, b) -> a + b) AS z
SELECT id, attrs FROM orders
SELECT id, attrs['channel'] AS channel FROM orders
SELECT id, element_at(attrs, 'gift') AS gift FROM orders
SELECT id, try_element_at(attrs, 'gift') AS gift FROM orders
SELECT id, map_keys(attrs) AS k FROM orders
SELECT id, map_values(attrs) AS v FROM orders
SELECT id, array_sort(map_keys(attrs)) AS k FROM orders
SELECT id, size(attrs) AS n FROM orders
SELECT id, map_contains_key(attrs, 'gift') AS g FROM orders
SELECT id, map_entries(attrs) AS e FROM orders WHERE id = 2
SELECT map('a', 1, 'b', 2) AS m
SELECT map_from_arrays(array('a', 'b'), array(1, 2)) AS m
SELECT map_from_entries(array(struct('a', 1), struct('b', 2))) AS m
SELECT str_to_map('a:1,b:2') AS m
SELECT map_concat(map('a', 1), map('b', 2)) AS m
SELECT id, map_filter(attrs, (k, v) -> v = 'web') AS m FROM orders
SELECT id, transform_values(attrs, (k, v) -> upper(v)) AS m FROM orders
SELECT id, transform_keys(attrs, (k, v) -> upper(k)) AS m FROM orders
SELECT attrs['channel'] AS channel, count(*) AS n FROM orders GROUP BY attrs['channel']
SELECT id, address FROM orders
SELECT id, address.city AS city FROM orders
SELECT id, address.city AS city, address.zip AS zip FROM orders
SELECT address.city AS city, count(*) AS n FROM orders GROUP BY address.city
SELECT id, address['city'] AS city FROM orders
SELECT struct(1 AS a, 'x' AS b) AS s
SELECT named_struct('a', 1, 'b', 'x') AS s
SELECT named_struct('a', 1, 'b', 'x').b AS b
SELECT id, struct(id, status) AS s FROM orders WHERE id < 3
SELECT id, to_json(address) AS j FROM orders
SELECT id, to_json(tags) AS j FROM orders
SELECT id, to_json(attrs) AS j FROM orders
SELECT id, to_json(named_struct('id', id, 'tags', tags)) AS j FROM orders
SELECT id, address.* FROM orders
SELECT array_contains(array(1, 2, 3), 2) AS c
SELECT id, tags IS NULL AS no_tags FROM orders
SELECT id, size(tags) = 0 AS empty FROM orders
SELECT id, coalesce(size(tags), 0) AS n FROM orders
SELECT id, array_size(map_keys(attrs)) AS n FROM orders
SELECT explode(array(1, 2, 3))
SELECT explode(array(1, 2, 3)) AS x
SELECT posexplode(array('a', 'b'))
SELECT explode(map('a', 1, 'b', 2))
SELECT id, explode(tags) AS tag FROM orders
SELECT id, explode_outer(tags) AS tag FROM orders
SELECT id, posexplode(tags) AS (pos, tag) FROM orders
SELECT tag, count(*) AS n FROM (SELECT explode(tags) AS tag FROM orders) GROUP BY tag
SELECT inline(array(struct(1, 'a'), struct(2, 'b')))
SELECT * FROM VALUES (1, 'a'), (2, 'b') AS t(x, y)
