%% The seed's synchronous Postgres driver (pg_sync), served by the TypeScript node.
%%
%% Same API and results as the seed's linked-in driver:
%%   connect(ConnStr) -> {ok, Port} | {error, Msg}
%%   select(Port, Query) -> {ok, [ColumnNames | Rows]} | {ok, CmdTuples} | {error, Msg}
%%   disconnect(Port) -> ok
%% Names and values are strings (the bytes PQgetvalue gives), NULL is [], CmdTuples is
%% the affected-row count as a string ("1", or [] when there is none), Msg is libpq's
%% error text. Port is a session process on the TypeScript node, linked to the caller:
%% when the caller dies, its connection closes.
%%
%% Beyond the seed: connect(ConnStr, [binary]) gives binaries, NULL as null and counts
%% as integers; select(Port, Query, Params) runs one statement with $1.. parameters.
-module(pg_sync).

-export([connect/1, connect/2, disconnect/1, select/2, select/3]).

connect(ConnectStr) ->
    connect(ConnectStr, []).

connect(ConnectStr, Opts) ->
    pg_query:connect(ConnectStr, Opts).

disconnect(Port) when is_pid(Port) ->
    _ = ts_cnode:call(Port, disconnect, ts_cnode:call_timeout()),
    ok;
disconnect(_Port) ->
    ok.

select(Port, Query) ->
    pg_query:request(Port, fun(Q) -> {select, Q} end, Query, fun call/2).

select(Port, Query, Params) ->
    pg_query:request(Port, fun(Q) -> {select, Q, Params} end, Query, fun call/2).

%% No monitor per select: ts_cnode_watch answers if the session is gone. A select that outlasts
%% query_timeout is cancelled.
call(Port, Command) ->
    Cancel = fun(Alias) -> pg_query:cancel(Port, Alias) end,
    case ts_cnode_watch:call(Port, Command, ts_cnode:query_timeout(), Cancel) of
        {exit, Reason} -> {error, ts_cnode:exit_message(Reason)};
        Reply -> Reply
    end.
