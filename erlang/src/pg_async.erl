%% The seed's asynchronous Postgres driver (pg_async), served by the TypeScript node.
%%
%% Same API as pg_sync; as in the seed, each reply travels as a message
%% {Port, {data, Term}} that the caller receives (Term is the reply itself, no
%% binary_to_term needed). A session that is gone answers {error, Msg} instead of
%% leaving the caller hanging (ts_cnode_watch, without a monitor per command).
-module(pg_async).

-export([connect/1, connect/2, disconnect/1, select/2, select/3]).
-export([return_port_data/1]).

-define(COMMAND, '$ts_cnode_pg').

connect(ConnectStr) ->
    connect(ConnectStr, []).

connect(ConnectStr, Opts) ->
    pg_query:connect(ConnectStr, Opts).

disconnect(Port) when is_pid(Port) ->
    _ = command(Port, disconnect, ts_cnode:call_timeout()),
    ok;
disconnect(_Port) ->
    ok.

select(Port, Query) ->
    pg_query:request(Port, fun(Q) -> {select, Q} end, Query, fun query/2).

select(Port, Query, Params) ->
    pg_query:request(Port, fun(Q) -> {select, Q, Params} end, Query, fun query/2).

%% A select that outlasts query_timeout is cancelled.
query(Port, Command) ->
    command(Port, Command, ts_cnode:query_timeout(), fun(Alias) -> pg_query:cancel(Port, Alias) end).

command(Port, Command, Timeout) ->
    command(Port, Command, Timeout, fun(_) -> ok end).

command(Port, Command, Timeout, TimedOut) ->
    case ts_cnode_watch:command(Port, fun(ReplyTo) -> {?COMMAND, ReplyTo, Command} end, Timeout, TimedOut) of
        {data, Data} -> Data;
        %% As pg_sync's calls say it: with the node's name.
        {'DOWN', noconnection} -> {error, ts_cnode:exit_message({nodedown, node(Port)})};
        {'DOWN', Reason} -> {error, ts_cnode:exit_message(Reason)};
        timeout -> {error, "timeout expired\n"}
    end.

%% The seed's receive, for callers that sent a command themselves.
return_port_data(Port) ->
    MRef = erlang:monitor(process, Port),
    return_port_data(Port, MRef, ts_cnode:query_timeout()).

return_port_data(Port, MRef, Timeout) ->
    case pg_query:port_data(Port, MRef, Timeout) of
        timeout ->
            erlang:demonitor(MRef, [flush]),
            {error, "timeout expired\n"};
        Data ->
            Data
    end.
