%% What pg_sync and pg_async share: query text preparation, select's checks and connect's failures.
-module(pg_query).

-export([prepare/1, request/4, cancel/2, connect/2, connect_error/1, port_data/3]).

%% A query as the session wants it: a UTF-8 binary when the caller gave text.
%% A list of bytes that forms valid UTF-8 is taken as UTF-8 (what the seed's port_control
%% passed on, and what results come back as); any other string is taken as code points.
%% Anything else is passed on unchanged, for the node to refuse with {error, Msg}.
-spec prepare(term()) -> {ok, term()} | {error, string()}.
prepare(Query) ->
    Q = to_utf8(Query),
    Max = ts_cnode:max_query_bytes(),
    case Q of
        B when is_binary(B), byte_size(B) > Max ->
            {error, lists:flatten(io_lib:format(
                      "ts-cnode: query is too large: ~B bytes, the limit is ~B (ts_cnode max_query_bytes)\n",
                      [byte_size(B), Max]))};
        _ ->
            {ok, Q}
    end.

%% select/2,3 of both drivers: Send(Port, Make(Q)) with the prepared query Q. A Port that is no session (what
%% a failed connect leaves a seed caller holding, or a pid of this node, which would never answer) answers as
%% libpq does without a connection.
-spec request(term(), fun((term()) -> term()), term(), fun((pid(), term()) -> term())) -> term().
request(Port, Make, Query, Send) when is_pid(Port), node(Port) =/= node() ->
    case prepare(Query) of
        {ok, Q} -> Send(Port, Make(Q));
        {error, _} = Error -> Error
    end;
request(_Port, _Make, _Query, _Send) ->
    {error, "no connection to the server\n"}.

%% What select/2,3 of both drivers do when query_timeout expires: tell the session that the caller gave up on
%% the select whose reply goes to Alias. The session stops it: on the server (a CancelRequest) if it is
%% running, or before it starts. Its late reply, if any, is dropped with the alias.
-spec cancel(pid(), reference()) -> ok.
cancel(Port, Alias) ->
    _ = erlang:send(Port, {'$ts_cnode_pg_cancel', Alias}, [noconnect]),
    ok.

to_utf8(B) when is_binary(B) -> B;
to_utf8(L) when is_list(L) ->
    try iolist_to_binary(L) of
        B ->
            case unicode:characters_to_binary(B, utf8, utf8) of
                B -> B;
                _ -> from_code_points(L)
            end
    catch
        error:badarg -> from_code_points(L)
    end;
to_utf8(Other) -> Other.

from_code_points(L) ->
    case unicode:characters_to_binary(L) of
        B when is_binary(B) -> B;
        _ -> L
    end.

%% connect/2 of both drivers: a session is started at once ({pg_connect_async, ...}) and sends the outcome of
%% its connection as {Port, {data, ok | {error, Msg}}}. Within call_timeout in all, or the session is given up:
%% unlinked, told to disconnect, and waited for, so that no connection stays open for a caller that was told
%% "timeout expired" and no late result is left in its mailbox.
-spec connect(term(), term()) -> {ok, pid()} | {error, term()}.
connect(ConnectStr, Opts) ->
    Timeout = ts_cnode:call_timeout(),
    Deadline = ts_cnode:deadline(Timeout),
    Driver = some_driver:client_port(),
    case ts_cnode:call(Driver, {pg_connect_async, ConnectStr, Opts}, Timeout) of
        {ok, Port} when is_pid(Port) ->
            await_connect(Port, ts_cnode:remaining(Deadline));
        {exit, noproc} ->
            %% The driver named, as gen_server:call's exit does not say which one.
            connect_error({exit, {noproc, Driver}});
        Other ->
            connect_error(Other)
    end.

await_connect(Port, Timeout) ->
    MRef = erlang:monitor(process, Port),
    case port_data(Port, MRef, Timeout) of
        ok ->
            {ok, Port};
        timeout ->
            abandon(Port, MRef);
        Error ->
            Error
    end.

%% The session's next {Port, {data, Data}} (the monitor MRef removed): Data, {error, Msg} when the session is
%% gone first, or timeout (the monitor kept).
-spec port_data(pid(), reference(), timeout()) -> term().
port_data(Port, MRef, Timeout) ->
    receive
        {Port, {data, Data}} ->
            erlang:demonitor(MRef, [flush]),
            Data;
        {'DOWN', MRef, process, _, Reason} ->
            {error, ts_cnode:exit_message(Reason)}
    after Timeout ->
        timeout
    end.

%% A session given up: unlinked, told to disconnect, waited for (5 s at most), its late results flushed.
abandon(Port, MRef) ->
    erlang:unlink(Port),
    Port ! {'$ts_cnode_pg', self(), disconnect},
    receive
        {'DOWN', MRef, process, _, _} -> ok
    after 5000 ->
        erlang:demonitor(MRef, [flush])
    end,
    flush_data(Port),
    {error, "timeout expired\n"}.

flush_data(Port) ->
    receive
        {Port, {data, _}} -> flush_data(Port)
    after 0 -> ok
    end.

%% {error, Msg} for a driver's connect reply other than {ok, Port}.
-spec connect_error(term()) -> {error, term()}.
connect_error({error, _} = Error) -> Error;
connect_error({exit, Reason}) -> {error, driver_exit_message(Reason)};
connect_error(Other) -> {error, unexpected(Other)}.

driver_exit_message({noproc, {Name, Node}}) ->
    lists:flatten(io_lib:format("ts-cnode driver ~s is not running on ~s\n", [Name, Node]));
driver_exit_message(noproc) ->
    "ts-cnode driver is not running\n";
driver_exit_message(Reason) ->
    ts_cnode:exit_message(Reason).

unexpected(Term) ->
    lists:flatten(io_lib:format("unexpected reply from ts-cnode: ~0p\n", [Term])).
