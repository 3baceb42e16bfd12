%% Requests to ts-cnode sessions without a monitor per request.
%%
%% gen_server:call monitors the server for every call; for a process on another node that monitor
%% costs two more distribution messages per call (MONITOR_P before the request, DEMONITOR_P after the
%% reply), each a write on the connection and a signal the ts-cnode node decodes and books: as much as
%% the select itself. Here one watcher process per node monitors each session once, the first time a
%% request goes to it, and an ETS table holds the callers waiting on each session. When a session ends
%% (or its node goes away) the watcher answers every caller still waiting on it, through the caller's
%% alias, with the monitor's reason; so a dead session still answers {error, Msg} and never leaves a
%% caller hanging, as with gen_server:call.
%%
%% Order of operations, so that no caller is missed: a caller records itself as waiting *before* it
%% checks that the session is watched (and asks the watcher to watch it if not); the watcher, on a
%% session's DOWN, forgets the session *before* it looks for the callers waiting on it. A caller that
%% finds the session watched was recorded before the watcher looked; one that does not asks for a new
%% monitor, whose DOWN (noproc) comes back at once. A reply and the watcher's answer may both arrive:
%% the first is taken, the alias is removed and the other flushed, so nothing is left in the mailbox.
%%
%% If the watcher is not running it is started; if it cannot be (or dies while a caller waits, which the
%% caller notices within ?RECHECK ms), the caller monitors the session itself, as gen_server:call does.
-module(ts_cnode_watch).

-export([call/3, call/4, command/3, command/4, watching/0]).
-export([init/2]).

-define(NAME, ts_cnode_watch).
%% {SessionPid}: the sessions the watcher monitors.
-define(WATCHED, ts_cnode_watch_sessions).
%% {Alias, SessionPid}: callers waiting on a session, by the alias that answers them.
-define(WAITING, ts_cnode_watch_waiting).
%% How often (ms) a caller still waiting checks that the watcher is there.
-define(RECHECK, 1000).

%% gen_server:call(Pid, Request, Timeout) for a session, with ts_cnode:call/3's results: the reply, or
%% {exit, Reason} with the reason gen_server:call would have exited with (noproc, normal,
%% {nodedown, Node}, timeout, ...).
-spec call(pid(), term(), timeout()) -> term() | {exit, term()}.
call(Pid, Request, Timeout) ->
    call(Pid, Request, Timeout, fun(_) -> ok end).

%% call/3, and when it times out, TimedOut(Alias) with the alias the reply would have come to (the
%% request's tag, [alias | Alias]), so that the caller can tell the session which request it gave up on.
-spec call(pid(), term(), timeout(), fun((reference()) -> term())) -> term() | {exit, term()}.
call(Pid, Request, Timeout, TimedOut) ->
    Deadline = ts_cnode:deadline(Timeout),
    Alias = erlang:alias([reply]),
    Result =
        case wait_on(Pid, Alias) of
            ok ->
                erlang:send(Pid, {'$gen_call', {self(), [alias | Alias]}, Request}, [noconnect]),
                receive_call(Pid, Alias, min(Timeout, ?RECHECK), Deadline);
            unwatched ->
                monitored_call(Pid, Request, Alias, Timeout)
        end,
    timed_out(Result, {exit, timeout}, TimedOut, Alias).

%% pg_async's command: sends Make(ReplyTo) to the session and waits for its {Pid, {data, Reply}}, sent to
%% ReplyTo, an alias of this call: once the call is over (answered, timed out, the session gone) the alias
%% is inactive, so a late reply is dropped on arrival and never taken for the answer to a later command.
%% -> {data, Reply} | {'DOWN', Reason} (the session is gone) | timeout
-spec command(pid(), fun((reference()) -> term()), timeout()) -> {data, term()} | {'DOWN', term()} | timeout.
command(Pid, Make, Timeout) ->
    command(Pid, Make, Timeout, fun(_) -> ok end).

%% command/3, and when it times out, TimedOut(ReplyTo).
-spec command(pid(), fun((reference()) -> term()), timeout(), fun((reference()) -> term())) ->
          {data, term()} | {'DOWN', term()} | timeout.
command(Pid, Make, Timeout, TimedOut) ->
    Alias = erlang:alias([reply]),
    timed_out(command(Pid, Make, Timeout, Alias, ts_cnode:deadline(Timeout)), timeout, TimedOut, Alias).

command(Pid, Make, Timeout, Alias, Deadline) ->
    case wait_on(Pid, Alias) of
        ok ->
            erlang:send(Pid, Make(Alias), [noconnect]),
            await_data(Pid, Alias, Deadline);
        unwatched ->
            MRef = erlang:monitor(process, Pid),
            erlang:send(Pid, Make(Alias), [noconnect]),
            receive
                {Pid, {data, Data}} ->
                    erlang:demonitor(MRef, [flush]),
                    done(Alias),
                    {data, Data};
                {'DOWN', MRef, process, _, Reason} ->
                    data_done(Pid, Alias),
                    {'DOWN', Reason}
            after Timeout ->
                erlang:demonitor(MRef, [flush]),
                data_done(Pid, Alias),
                timeout
            end
    end.

%% How many sessions the watcher monitors and how many callers wait (undefined: no watcher).
-spec watching() -> #{sessions := non_neg_integer(), waiting := non_neg_integer()} | undefined.
watching() ->
    try
        #{sessions => ets:info(?WATCHED, size), waiting => ets:info(?WAITING, size)}
    catch
        error:_ -> undefined
    end.

%% ---------------------------------------------------------------------------------------------

timed_out(TimeoutResult, TimeoutResult, TimedOut, Alias) ->
    _ = TimedOut(Alias),
    TimeoutResult;
timed_out(Result, _TimeoutResult, _TimedOut, _Alias) ->
    Result.

%% A call without the watcher: monitored, as gen_server:call does, but with Alias as its tag.
monitored_call(Pid, Request, Alias, Timeout) ->
    MRef = erlang:monitor(process, Pid),
    erlang:send(Pid, {'$gen_call', {self(), [alias | Alias]}, Request}, [noconnect]),
    monitored_reply(Pid, MRef, Alias, Timeout).

%% The reply tagged Alias, or Pid's end (seen through MRef, or reported by a watcher), or the timeout.
monitored_reply(Pid, MRef, Alias, Timeout) ->
    receive
        {[alias | Alias], Reply} ->
            erlang:demonitor(MRef, [flush]),
            done(Alias),
            Reply;
        {Alias, {'DOWN', Reason}} ->
            erlang:demonitor(MRef, [flush]),
            done(Alias),
            {exit, call_exit(Pid, Reason)};
        {'DOWN', MRef, process, _, Reason} ->
            done(Alias),
            {exit, call_exit(Pid, Reason)}
    after Timeout ->
        erlang:demonitor(MRef, [flush]),
        done(Alias),
        {exit, timeout}
    end.

wait_on(Pid, Alias) ->
    wait_on(Pid, Alias, 2).

wait_on(_Pid, _Alias, 0) ->
    unwatched;
wait_on(Pid, Alias, Tries) ->
    try
        true = ets:insert(?WAITING, {Alias, Pid}),
        case ets:member(?WATCHED, Pid) of
            true -> ok;
            false -> watch(Pid)
        end
    catch
        error:badarg ->
            %% No watcher (its tables are gone with it): start one, then try again.
            _ = start(),
            wait_on(Pid, Alias, Tries - 1)
    end.

%% Asks the watcher to monitor Pid; ok once it does.
watch(Pid) ->
    case whereis(?NAME) of
        undefined ->
            erlang:error(badarg);
        W ->
            MRef = erlang:monitor(process, W),
            W ! {watch, Pid, self(), MRef},
            receive
                {MRef, watching} ->
                    erlang:demonitor(MRef, [flush]),
                    ok;
                {'DOWN', MRef, process, _, _} ->
                    erlang:error(badarg)
            end
    end.

done(Alias) ->
    erlang:unalias(Alias),
    %% The other of reply and watcher's answer, if it came in before the alias went.
    receive
        {Alias, _} -> ok;
        {[alias | Alias], _} -> ok
    after 0 -> ok
    end,
    try ets:delete(?WAITING, Alias) catch error:badarg -> true end.

%% done/1 for a command: also a reply that came in before the alias went (the reply is not tagged with it).
data_done(Pid, Alias) ->
    done(Alias),
    receive
        {Pid, {data, _}} -> ok
    after 0 -> ok
    end.

%% The reason gen_server:call exits with, for a monitor's DOWN reason.
call_exit(Pid, noconnection) -> {nodedown, node(Pid)};
call_exit(_Pid, Reason) -> Reason.

%% Whether this caller's entry is still in the watcher's table: the watcher is there and will answer if
%% the session ends. Otherwise the watcher has answered already (the answer is queued) or is gone.
watched(Alias) ->
    try
        ets:member(?WAITING, Alias)
    catch
        error:badarg -> false
    end.

%% A call that has waited ?RECHECK ms: wait on, checking every ?RECHECK ms that the watcher still holds
%% the entry; if not, monitor the session as gen_server:call would (a queued answer is still taken).
await_call(Pid, Alias, Deadline) ->
    case ts_cnode:remaining(Deadline) of
        0 ->
            erlang:unalias(Alias),
            receive
                {[alias | Alias], Reply} -> done(Alias), Reply;
                {Alias, {'DOWN', Reason}} -> done(Alias), {exit, call_exit(Pid, Reason)}
            after 0 ->
                done(Alias),
                {exit, timeout}
            end;
        Left ->
            case watched(Alias) of
                true ->
                    receive_call(Pid, Alias, min(Left, ?RECHECK), Deadline);
                false ->
                    monitored_reply(Pid, erlang:monitor(process, Pid), Alias, Left)
            end
    end.

%% The reply, or the watcher's answer that the session is gone, if one comes within Wait ms; else wait on.
%% Every clause matches the alias, so the receive skips the messages queued before the alias was made
%% (the compiler's receive marker, which follows the alias into this function), as gen_server:call's does.
receive_call(Pid, Alias, Wait, Deadline) ->
    receive
        {[alias | Alias], Reply} ->
            done(Alias),
            Reply;
        {Alias, {'DOWN', Reason}} ->
            done(Alias),
            {exit, call_exit(Pid, Reason)}
    after Wait ->
        await_call(Pid, Alias, Deadline)
    end.

await_data(Pid, Alias, Deadline) ->
    case ts_cnode:remaining(Deadline) of
        0 ->
            data_done(Pid, Alias),
            timeout;
        Left ->
            case watched(Alias) of
                true ->
                    receive
                        {Pid, {data, Data}} ->
                            done(Alias),
                            {data, Data};
                        {Alias, {'DOWN', Reason}} ->
                            data_done(Pid, Alias),
                            {'DOWN', Reason}
                    after min(Left, ?RECHECK) ->
                        await_data(Pid, Alias, Deadline)
                    end;
                false ->
                    MRef = erlang:monitor(process, Pid),
                    receive
                        {Pid, {data, Data}} ->
                            erlang:demonitor(MRef, [flush]),
                            done(Alias),
                            {data, Data};
                        {Alias, {'DOWN', Reason}} ->
                            erlang:demonitor(MRef, [flush]),
                            data_done(Pid, Alias),
                            {'DOWN', Reason};
                        {'DOWN', MRef, process, _, Reason} ->
                            data_done(Pid, Alias),
                            {'DOWN', Reason}
                    after Left ->
                        erlang:demonitor(MRef, [flush]),
                        data_done(Pid, Alias),
                        timeout
                    end
            end
    end.

%% ---------------------------------------------------------------------------------------------
%% The watcher

start() ->
    case whereis(?NAME) of
        undefined ->
            Ref = make_ref(),
            {_, MRef} = spawn_monitor(?MODULE, init, [self(), Ref]),
            receive
                {Ref, Result} ->
                    erlang:demonitor(MRef, [flush]),
                    Result;
                {'DOWN', MRef, process, _, Reason} ->
                    {error, Reason}
            end;
        _ ->
            ok
    end.

init(Parent, Ref) ->
    %% Not the starting caller's group leader: an application that stops must not take the watcher along.
    case whereis(init) of
        undefined -> ok;
        Init -> group_leader(Init, self())
    end,
    try register(?NAME, self()) of
        true ->
            _ = ets:new(?WATCHED, [named_table, public, set, {read_concurrency, true}]),
            _ = ets:new(?WAITING, [named_table, public, set, {write_concurrency, true}]),
            Parent ! {Ref, ok},
            loop()
    catch
        error:badarg ->
            %% Another caller started one first.
            Parent ! {Ref, ok}
    end.

loop() ->
    receive
        {watch, Pid, From, Ref} ->
            case ets:member(?WATCHED, Pid) of
                true ->
                    ok;
                false ->
                    _ = erlang:monitor(process, Pid),
                    ets:insert(?WATCHED, {Pid})
            end,
            From ! {Ref, watching},
            loop();
        {'DOWN', _MRef, process, Pid, Reason} when is_pid(Pid) ->
            %% Forget the session first (see the top of the module), then answer who waits on it.
            ets:delete(?WATCHED, Pid),
            Waiting = ets:select(?WAITING, [{{'$1', Pid}, [], ['$1']}]),
            lists:foreach(
              fun(Alias) ->
                      erlang:send(Alias, {Alias, {'DOWN', Reason}}),
                      ets:delete(?WAITING, Alias)
              end,
              Waiting),
            loop();
        _ ->
            loop()
    end.
