%% The seeds' example sessions, run as Erlang code against the TypeScript node:
%% pg_sync and pg_async (connect, create, insert, select, a SQL error, disconnect) and next_perm.
%% Every call is printed with what it returned.  Run: seed_demo:run("postgres://...").
-module(seed_demo).
-export([run/1]).

-define(SHOW(Expr), show(??Expr, Expr)).

run(ConnStr) ->
    io:format("~n== the TypeScript node: ~p~n", [ts_cnode:node()]),
    pong = ?SHOW(wait_for(ts_cnode:node(), 60)),
    Table = "seed_demo_" ++ integer_to_list(erlang:unique_integer([positive])),
    io:format("~n== pg_sync~n"),
    {ok, P} = ?SHOW(pg_sync:connect(ConnStr)),
    ?SHOW(pg_sync:select(P, "create table " ++ Table ++ " (id int, name text)")),
    ?SHOW(pg_sync:select(P, "insert into " ++ Table ++ " values (1, 'one'), (2, null)")),
    ?SHOW(pg_sync:select(P, "select id, name from " ++ Table ++ " order by id")),
    ?SHOW(pg_sync:select(P, "select * from no_such_table")),
    ?SHOW(pg_sync:disconnect(P)),
    io:format("~n== pg_async~n"),
    {ok, A} = ?SHOW(pg_async:connect(ConnStr)),
    ?SHOW(pg_async:select(A, "select count(*) from " ++ Table)),
    ?SHOW(pg_async:select(A, "drop table " ++ Table)),
    ?SHOW(pg_async:disconnect(A)),
    io:format("~n== next_perm~n"),
    ?SHOW(next_perm:load()),
    ?SHOW(next_perm:next_perm([1, 2, 3])),
    ?SHOW(next_perm:prev_perm([1, 2, 3])),
    All = ?SHOW(next_perm:all_perm([1, 2, 3, 4])),
    ?SHOW(length(All)),
    io:format("~n== some_driver~n"),
    ?SHOW(some_driver:client_port()),
    ok.

%% The node may still be starting (docker compose starts the containers together).
wait_for(Node, 0) -> net_adm:ping(Node);
wait_for(Node, Tries) ->
    case net_adm:ping(Node) of
        pong -> pong;
        pang -> timer:sleep(500), wait_for(Node, Tries - 1)
    end.

show(Text, Value) ->
    io:format("~s~n  -> ~p~n", [Text, Value]),
    Value.
