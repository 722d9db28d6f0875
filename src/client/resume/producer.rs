//! The writer's side of resume: the legs of one data stream, the replay
//! buffer, and the control messages the reader sends (handshake and
//! acknowledgements on each leg's acknowledgement stream, resume requests,
//! receipt), each read by a listener task on its side path.
//!
//! [`Legs`] takes the sealed chunks from the writer's pump in place of a
//! single upload body. A broken leg is not an error: the pump waits (the
//! application's writes wait with it) until the reader asks for the next
//! leg, which starts at the chunk the reader names, re-sent from the replay
//! buffer, or until the resume timeout ends the stream. The pump also waits
//! while the replay buffer is full of chunks the reader has not
//! acknowledged: the buffer bounds what is in flight.

use std::sync::Arc;

use bytes::Bytes;
use tokio::io::AsyncReadExt;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use tokio::time::Instant;

use super::control::{ControlKey, GiveUpReason, Message, MESSAGE_LEN};
use super::replay::{ReplayBuffer, ReplayFrom};
use super::{
    attempt, human_size, pause_after, send_until, Resume, ResumeError, ATTEMPT, RETRY_PAUSE,
};
use crate::api::{self, Upload, UploadSink, UploadStatus};
use crate::cipher::{Encryptor, Format, TAG_SIZE};
use crate::client::side_channel::{self, side_config};
use crate::client::{Config, Error};
use crate::protocol::ConnectMode;

/// A verified message from the reader, or why one was refused.
#[derive(Debug)]
pub(crate) enum Inbound {
    Message(Message),
    Refused(String),
}

/// Something the legs must react to (what [`Legs::next_event`] waits for).
#[derive(Debug)]
pub(crate) enum Event {
    Inbound(Inbound),
    LegEnded(Result<(), api::Error>),
    HandshakeMissing,
    ResumeExpired,
    ReceiptMissing,
    /// Time to look again whether the first leg should start over.
    RestartDue,
}

/// The reader's acknowledgements so far.
#[derive(Debug, Clone, Copy, Default)]
struct Acked {
    /// The first chunk the reader has not acknowledged.
    next_chunk: u64,
    /// When the last acknowledgement (a repeated one included: the reader
    /// repeats its last one while it has nothing new, committing its output
    /// included) arrived.
    heard: Option<Instant>,
}

/// One connection of the data stream.
struct Leg {
    number: u32,
    body: UploadSink,
    status: UploadStatus,
    /// The next chunk to send on this leg.
    cursor: u64,
    /// The body was ended with its terminator.
    ended: bool,
}

/// Aborts the listener task when dropped.
struct Listener(JoinHandle<()>);

impl Drop for Listener {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// The writer's data stream across legs.
pub(crate) struct Legs {
    config: Config,
    options: Resume,
    key: Arc<ControlKey>,
    format: Format,
    replay: ReplayBuffer,
    leg: Option<Leg>,
    /// The newest leg number asked for (the current leg, or the one broken).
    leg_number: u32,
    inbox: mpsc::Receiver<Inbound>,
    inbox_tx: mpsc::Sender<Inbound>,
    resume_listener: Listener,
    /// Reads the current leg's acknowledgement stream (leg 0's carries the
    /// handshake first).
    ack_listener: Listener,
    /// What the reader acknowledged, and when it was last heard.
    acked: watch::Receiver<Acked>,
    acked_tx: Arc<watch::Sender<Acked>>,
    receipt_listener: Option<Listener>,
    /// Until the reader's handshake arrived.
    hello_deadline: Option<Instant>,
    /// Since when no leg works, and why.
    broken: Option<(Instant, String)>,
    /// When the relay confirmed the first leg while the reader's handshake
    /// had not come: the reader's connection may have broken before it had
    /// the header, after the relay wrote the last bytes into it.
    delivered_unheard: Option<Instant>,
    /// After the end of the stream: until when the receipt may come.
    receipt_deadline: Option<Instant>,
    receipt: bool,
    /// The last refused message, for the error if the stream then fails.
    refused: Option<String>,
    /// An event that arrived while a chunk was being sent.
    stashed: Option<Event>,
    /// The header and payload nonce, kept until the reader's handshake: a
    /// first leg that breaks before it starts over with them.
    preamble: Option<Bytes>,
    resumes: u32,
}

impl std::fmt::Debug for Legs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Legs")
            .field("leg", &self.leg_number)
            .field("next_chunk", &self.replay.next_index())
            .field("resumes", &self.resumes)
            .finish_non_exhaustive()
    }
}

impl Legs {
    /// Starts resume for the stream `encryptor` seals, whose leg 0 is
    /// `upload` on the transfer's own path, and listens for the reader's
    /// handshake (due within the connect timeout, or the resume timeout if
    /// there is none).
    pub(crate) fn start(
        config: &Config,
        options: Resume,
        encryptor: &Encryptor,
        upload: Upload,
    ) -> Legs {
        let key = Arc::new(ControlKey::new(
            encryptor.exporter_secret(),
            config.stream_path(),
        ));
        let (inbox_tx, inbox) = mpsc::channel(4);
        let hello_wait = config.connect_timeout.unwrap_or(options.resume_timeout);
        let (acked_tx, acked) = watch::channel(Acked::default());
        let acked_tx = Arc::new(acked_tx);
        let ack_listener = listen_for_acks(config, &key, 0, &inbox_tx, &acked_tx);
        let resume_listener = listen_for_resume(config, &key, 1, &inbox_tx);
        Legs {
            config: config.clone(),
            options,
            format: encryptor.format(),
            key,
            replay: ReplayBuffer::new(options.buffer),
            leg: Some(Leg {
                number: 0,
                body: upload.sink,
                status: upload.status,
                cursor: 0,
                ended: false,
            }),
            leg_number: 0,
            inbox,
            inbox_tx,
            resume_listener,
            ack_listener,
            acked,
            acked_tx,
            receipt_listener: None,
            hello_deadline: Some(Instant::now() + hello_wait),
            broken: None,
            delivered_unheard: None,
            receipt_deadline: None,
            receipt: false,
            refused: None,
            stashed: None,
            preamble: None,
            resumes: 0,
        }
    }

    /// Sends the header (leg 0 only: a reader resumes only after it).
    pub(crate) async fn send_preamble(&mut self, preamble: Bytes) -> Result<(), Error> {
        self.preamble = Some(preamble.clone());
        if let Some(leg) = self.leg.as_mut() {
            let sent = tokio::select! {
                sent = leg.body.send(preamble) => sent,
                outcome = &mut leg.status => outcome.and(Err(api::Error::PrematureConfirmation)),
            };
            if let Err(error) = sent {
                self.break_leg(format!("{}", Error::from(error)));
            }
        }
        Ok(())
    }

    /// Adds the next sealed chunk once the replay buffer has room for it
    /// and sends every chunk the current leg has not sent yet (waiting out
    /// a broken leg).
    pub(crate) async fn send_chunk(&mut self, frame: Bytes) -> Result<(), Error> {
        let overhead = TAG_SIZE
            + match self.format {
                Format::AgeRt => 4,
                Format::AgeV1 => 0,
            };
        let plaintext = frame.len().saturating_sub(overhead) as u64;
        self.drain_for(Some(frame.len())).await?;
        self.replay.push(frame, plaintext);
        self.drain().await
    }

    /// Waits until the HTTP client of the current leg took every chunk.
    pub(crate) async fn flush(&mut self) -> Result<(), Error> {
        loop {
            self.drain().await?;
            let deadlines = self.deadlines();
            let Some(leg) = self.leg.as_mut() else {
                // The stream is confirmed (receipt): nothing to flush.
                return Ok(());
            };
            let flushed = tokio::select! {
                flushed = leg.body.flush() => flushed,
                event = next_event(&mut self.inbox, Some(&mut leg.status), deadlines) => {
                    self.stashed = Some(event);
                    continue;
                }
            };
            match flushed {
                Ok(()) => return Ok(()),
                Err(error) => self.break_leg(Error::from(error).to_string()),
            }
        }
    }

    /// The final chunk was pushed: ends the current leg's body and waits
    /// for the reader's receipt, serving resumes meanwhile.
    pub(crate) async fn finish(&mut self) -> Result<u32, Error> {
        self.receipt_deadline = Some(Instant::now() + self.options.resume_timeout);
        self.receipt_listener = Some(listen_for_receipt(&self.config, &self.key, &self.inbox_tx));
        loop {
            if self.receipt {
                return Ok(self.resumes);
            }
            if let Some(event) = self.stashed.take() {
                self.handle(event).await?;
                continue;
            }
            let next = self.replay.next_index();
            let deadlines = self.deadlines();
            let restart = self.can_restart_first_leg();
            match self.leg.as_mut() {
                Some(leg) if leg.cursor < next => self.drain().await?,
                Some(leg) if !leg.ended => {
                    let ended = tokio::select! {
                        ended = leg.body.finish() => ended,
                        event = next_event(&mut self.inbox, Some(&mut leg.status), deadlines) => {
                            self.stashed = Some(event);
                            continue;
                        }
                    };
                    match ended {
                        Ok(()) => leg.ended = true,
                        Err(error) => self.break_leg(Error::from(error).to_string()),
                    }
                }
                None if restart => self.restart_first_leg().await?,
                leg => {
                    let status = leg.map(|leg| &mut leg.status);
                    let event = next_event(&mut self.inbox, status, deadlines).await;
                    self.handle(event).await?;
                }
            }
        }
    }

    /// Waits for the next event (cancel-safe: the pump selects on it
    /// between the application's commands).
    pub(crate) async fn next_event(&mut self) -> Event {
        if let Some(event) = self.stashed.take() {
            return event;
        }
        let deadlines = self.deadlines();
        let status = self.leg.as_mut().map(|leg| &mut leg.status);
        next_event(&mut self.inbox, status, deadlines).await
    }

    fn deadlines(&self) -> Deadlines {
        Deadlines {
            hello: self.hello_deadline,
            broken: self
                .broken
                .as_ref()
                .map(|(since, _)| *since + self.options.resume_timeout),
            // The reader's last sign of life counts too: it may take long
            // to commit (a consumer command that builds indexes after its
            // last byte), and repeats its last acknowledgement meanwhile.
            receipt: self.receipt_deadline.map(|deadline| {
                let heard = self.acked.borrow().heard;
                heard.map_or(deadline, |at| {
                    deadline.max(at + self.options.resume_timeout)
                })
            }),
            // Once passed it is no deadline any more (the loops restart).
            restart: self
                .delivered_unheard
                .filter(|at| self.first_leg_replayable() && at.elapsed() < ATTEMPT)
                .map(|at| at + ATTEMPT),
        }
    }

    /// Sends the chunks the current leg has not sent; a broken leg waits
    /// for the reader's next resume request.
    async fn drain(&mut self) -> Result<(), Error> {
        self.drain_for(None).await
    }

    /// Like [`drain`](Self::drain), and then, with `room`, waits until the
    /// reader's acknowledgements leave room for a chunk of that many bytes.
    async fn drain_for(&mut self, room: Option<usize>) -> Result<(), Error> {
        loop {
            if self.receipt {
                return Ok(());
            }
            if let Some(event) = self.stashed.take() {
                self.handle(event).await?;
                continue;
            }
            let next = self.replay.next_index();
            let deadlines = self.deadlines();
            let restart = self.can_restart_first_leg();
            match self.leg.as_mut() {
                Some(leg) if leg.cursor < next => {
                    let Some(frame) = self.replay.get(leg.cursor) else {
                        // Only with a buffer smaller than what one send holds.
                        let behind = self.replay.replay_from(leg.cursor, 0);
                        return Err(Error::Resume(ResumeError::Refused(format!(
                            "chunk {} left the replay buffer before it was sent ({behind:?})",
                            leg.cursor
                        ))));
                    };
                    let sent = tokio::select! {
                        sent = leg.body.send(frame) => sent,
                        event = next_event(&mut self.inbox, Some(&mut leg.status), deadlines) => {
                            self.stashed = Some(event);
                            continue;
                        }
                    };
                    match sent {
                        Ok(()) => leg.cursor += 1,
                        Err(error) => self.break_leg(Error::from(error).to_string()),
                    }
                }
                Some(leg) => {
                    let Some(len) = room else {
                        return Ok(());
                    };
                    self.replay
                        .acknowledge(self.acked.borrow_and_update().next_chunk);
                    if self.replay.has_room(len) {
                        return Ok(());
                    }
                    tokio::select! {
                        changed = self.acked.changed() => changed.expect("the legs hold the sender"),
                        event = next_event(&mut self.inbox, Some(&mut leg.status), deadlines) => {
                            self.stashed = Some(event);
                        }
                    }
                }
                None if restart => self.restart_first_leg().await?,
                None => {
                    let event = next_event(&mut self.inbox, None, deadlines).await;
                    self.handle(event).await?;
                }
            }
        }
    }

    /// Reacts to `event`; fails the stream only when it cannot go on.
    pub(crate) async fn handle(&mut self, event: Event) -> Result<(), Error> {
        let Some(event) = self.absorb(event) else {
            return Ok(());
        };
        match event {
            Event::Inbound(Inbound::Refused(_)) | Event::RestartDue => unreachable!("absorbed"),
            Event::Inbound(Inbound::Message(message)) => return self.on_message(message).await,
            Event::LegEnded(Ok(())) => {
                let finished = self.leg.as_ref().is_some_and(|leg| leg.ended);
                if !finished {
                    self.break_leg("the relay confirmed a leg before its end".into());
                } else {
                    // Delivered to the reader's connection; the receipt tells the rest.
                    let first = self.leg.as_ref().is_some_and(|leg| leg.number == 0);
                    if first && self.hello_deadline.is_some() {
                        self.delivered_unheard = Some(Instant::now());
                    }
                    self.leg = None;
                }
            }
            Event::LegEnded(Err(error)) => self.break_leg(Error::from(error).to_string()),
            Event::HandshakeMissing => {
                let after = self
                    .config
                    .connect_timeout
                    .unwrap_or(self.options.resume_timeout);
                return Err(self.failure(ResumeError::NoHandshake(after)));
            }
            Event::ReceiptMissing => {
                // Heard from the reader since the wait began: wait on.
                if self
                    .deadlines()
                    .receipt
                    .is_some_and(|deadline| deadline > Instant::now())
                {
                    return Ok(());
                }
                let limit = self.options.resume_timeout;
                // Never a word from the reader, not even its handshake: most
                // likely it runs without resume (a short stream ends before
                // the handshake's own deadline), which "no receipt" hides.
                if self.hello_deadline.is_some() {
                    return Err(self.failure(ResumeError::NoHandshake(limit)));
                }
                return Err(self.failure(ResumeError::NoReceipt(limit)));
            }
            Event::ResumeExpired => {
                let cause = self
                    .broken
                    .as_ref()
                    .map(|(_, why)| why.clone())
                    .unwrap_or_default();
                return Err(self.failure(ResumeError::TimedOut {
                    after: self.options.resume_timeout,
                    cause,
                }));
            }
        }
        Ok(())
    }

    /// The writer gives the stream up: the current leg is dropped (its body
    /// aborted), and the reader's next resume request is answered with an
    /// authenticated [`Message::GiveUp`] as the leg's first message, so it
    /// fails at once. Gives up waiting after two attempts' time (a reader
    /// without the header cannot ask: its resume timeout tells it).
    pub(crate) async fn give_up(&mut self) {
        self.leg = None;
        let deadline = Instant::now() + 2 * ATTEMPT;
        let mut stashed = match self.stashed.take() {
            Some(Event::Inbound(inbound)) => Some(inbound),
            _ => None,
        };
        let asked = loop {
            let inbound = match stashed.take() {
                Some(inbound) => inbound,
                None => tokio::select! {
                    Some(inbound) = self.inbox.recv() => inbound,
                    () = tokio::time::sleep_until(deadline) => return,
                },
            };
            if let Inbound::Message(Message::Resume { leg, .. }) = inbound {
                break leg;
            }
        };
        // The whole leg is this one message, sent as a side-channel message
        // is, in one attempt (it returns once the relay confirmed the reader
        // got it).
        let path = self.key.leg_path(asked);
        let message = self.key.seal(&Message::GiveUp {
            leg: asked,
            reason: GiveUpReason::Stream,
        });
        let answered = send_until(&self.config, path.clone(), &message, Instant::now()).await;
        tracing::debug!("{path}: told the reader the stream was given up: {answered:?}");
    }

    /// A refused message is reported with the failure, if one follows.
    fn failure(&self, error: ResumeError) -> Error {
        match &self.refused {
            Some(refused) => {
                Error::Resume(ResumeError::Refused(format!("{refused}; then: {error}")))
            }
            None => Error::Resume(error),
        }
    }

    fn refuse(&mut self, reason: String) {
        tracing::warn!(
            "{}: refused a resume message: {reason}",
            self.config.stream_path()
        );
        self.refused = Some(reason);
    }

    /// Takes the events that need no I/O (the handshake, a refusal);
    /// returns the others.
    fn absorb(&mut self, event: Event) -> Option<Event> {
        match event {
            Event::Inbound(Inbound::Message(Message::Hello)) => {
                self.heard_from_reader();
                None
            }
            // Only a reader that opened the header can make these (its
            // handshake may have been lost with leg 0's first connection).
            Event::Inbound(Inbound::Message(Message::Resume { .. } | Message::Receipt { .. })) => {
                self.heard_from_reader();
                Some(event)
            }
            Event::Inbound(Inbound::Refused(reason)) => {
                self.refuse(reason);
                None
            }
            // The callers' loops look whether to restart at once.
            Event::RestartDue => None,
            other => Some(other),
        }
    }

    /// The reader has the header and takes part in resume.
    fn heard_from_reader(&mut self) {
        if self.hello_deadline.take().is_some() {
            tracing::debug!(
                "{}: the reader takes part in resume",
                self.config.stream_path()
            );
        }
        self.preamble = None;
        self.delivered_unheard = None;
    }

    async fn on_message(&mut self, message: Message) -> Result<(), Error> {
        match message {
            Message::Hello => unreachable!("absorbed"),
            Message::Resume {
                leg,
                next_chunk,
                plaintext,
            } => return self.start_leg(leg, next_chunk, plaintext).await,
            Message::Receipt { final_chunk, total } => {
                let expected_final = self.replay.next_index().checked_sub(1);
                let expected_total = self.replay.plaintext_total();
                if self.receipt_deadline.is_some()
                    && expected_final == Some(final_chunk)
                    && total == expected_total
                {
                    self.receipt = true;
                } else {
                    self.refuse(format!(
                        "a receipt for chunk {final_chunk} and {total} bytes, but the stream \
                         ends at chunk {expected_final:?} after {expected_total} bytes"
                    ));
                    // Listen again: the real receipt may still come.
                    self.receipt_listener =
                        Some(listen_for_receipt(&self.config, &self.key, &self.inbox_tx));
                }
            }
            Message::Accept { .. } | Message::Behind { .. } => {
                self.refuse("a writer's message sent to the writer".into())
            }
            Message::Ack { .. } => self.refuse("an acknowledgement on a control path".into()),
            Message::GiveUp { reason, .. } => {
                return Err(Error::Resume(ResumeError::GaveUp {
                    output: reason == GiveUpReason::Output,
                }))
            }
        }
        Ok(())
    }

    /// The current leg failed: drop it (aborting its body) and wait for the
    /// reader's resume request.
    fn break_leg(&mut self, why: String) {
        if let Some(leg) = self.leg.take() {
            tracing::warn!(
                "{}: connection lost on leg {} at chunk {} ({why}); waiting for the reader to resume \
                 (up to {:.0} s)",
                self.config.stream_path(),
                leg.number,
                leg.cursor,
                self.options.resume_timeout.as_secs_f64()
            );
        }
        self.broken.get_or_insert_with(|| (Instant::now(), why));
    }

    /// Whether the first leg broke before the reader's handshake, so it may
    /// start over from the header (nothing authenticates a resume request
    /// before the reader has opened it), with every chunk still held.
    ///
    /// A first leg the relay confirmed counts once the handshake is
    /// [`ATTEMPT`] late: the relay may have written the whole stream into a
    /// reader connection that broke before the header, and that reader
    /// waits for the first leg again. A reader that has the header sends
    /// its handshake at once (a late one only costs an offer given up).
    fn can_restart_first_leg(&self) -> bool {
        let unheard = self
            .delivered_unheard
            .is_some_and(|at| at.elapsed() >= ATTEMPT);
        self.first_leg_replayable() && (self.broken.is_some() || unheard)
    }

    /// No leg runs, the first leg was the last one, the reader's handshake
    /// has not come, and the header and every chunk are still held.
    fn first_leg_replayable(&self) -> bool {
        self.leg.is_none()
            && self.leg_number == 0
            && self.hello_deadline.is_some()
            && self.preamble.is_some()
            && (self.replay.next_index() == 0 || self.replay.get(0).is_some())
    }

    /// One attempt to start the first leg over on the transfer's own path:
    /// the header, then every chunk from 0 (the same bytes). A message
    /// from the reader meanwhile (its handshake or a resume request) wins.
    async fn restart_first_leg(&mut self) -> Result<(), Error> {
        let config = self.config.clone();
        let path = config.stream_path().to_owned();
        // Given up once the handshake comes: the reader has the header.
        let Some(upload) = self
            .connect_watching(&path, config.content_type(), Legs::can_restart_first_leg)
            .await
        else {
            return Ok(());
        };
        let mut upload = match upload {
            Ok(upload) => upload,
            Err(error) => {
                tracing::debug!(
                    "{}: the first leg did not start over: {error}",
                    config.stream_path()
                );
                pause_after(&error).await;
                return Ok(());
            }
        };
        let preamble = self.preamble.clone().expect("checked");
        if let Err(error) = upload.sink.send(preamble).await {
            tracing::debug!(
                "{}: the first leg broke at once: {error}",
                config.stream_path()
            );
            return Ok(());
        }
        tracing::warn!(
            "{}: started the first leg over (it broke before the reader had the header)",
            config.stream_path()
        );
        self.resumes += 1;
        self.broken = None;
        self.delivered_unheard = None;
        self.leg = Some(Leg {
            number: 0,
            body: upload.sink,
            status: upload.status,
            cursor: 0,
            ended: false,
        });
        Ok(())
    }

    /// Connects the writer's end of a leg on `path` while watching the
    /// reader's messages: the handshake or a refusal is noted and the
    /// connect goes on while `wanted` holds; a newer request or a deadline
    /// gives it up (`None`; the event waits for the caller's loop).
    async fn connect_watching(
        &mut self,
        path: &str,
        content_type: Option<&str>,
        wanted: fn(&Legs) -> bool,
    ) -> Option<Result<Upload, Error>> {
        let config = self.config.clone();
        let connecting = connect_leg(&config, path, content_type);
        tokio::pin!(connecting);
        loop {
            let deadlines = self.deadlines();
            tokio::select! {
                upload = &mut connecting => return Some(upload),
                event = next_event(&mut self.inbox, None, deadlines) => {
                    if let Some(other) = self.absorb(event) {
                        self.stashed = Some(other);
                        return None;
                    }
                    if !wanted(self) {
                        return None;
                    }
                }
            }
        }
    }

    /// Starts leg `number` at chunk `k` for a reader that authenticated
    /// `plaintext` bytes.
    async fn start_leg(&mut self, number: u32, k: u64, plaintext: u64) -> Result<(), Error> {
        let broken_at = self.broken.as_ref().map(|(since, _)| *since);
        let from = self.replay.replay_from(k, plaintext);
        if let ReplayFrom::Ahead { next } = from {
            self.refuse(format!(
                "a resume request for chunk {k}, but only {next} chunks were sealed"
            ));
            return Ok(());
        }
        // The old leg (if it still looks alive) is abandoned: its body is
        // aborted, so it can never deliver after the new one starts. The
        // reader has every chunk below `k`.
        self.leg = None;
        self.replay.acknowledge(k);
        self.broken
            .get_or_insert_with(|| (Instant::now(), "the reader asked to resume".into()));
        self.leg_number = number;
        self.resume_listener =
            listen_for_resume(&self.config, &self.key, number + 1, &self.inbox_tx);
        let path = self.key.leg_path(number);
        // Attempt after attempt until the reader comes, a newer request or
        // a deadline (the reader may reach the leg only after the link is
        // back).
        let mut upload = loop {
            let Some(upload) = self.connect_watching(&path, None, |_| true).await else {
                return Ok(());
            };
            match upload {
                Ok(upload) => break upload,
                Err(error) => {
                    tracing::debug!("{path}: leg {number} did not start yet: {error}");
                    pause_after(&error).await;
                }
            }
        };
        let (prefix, behind) = match from {
            ReplayFrom::Behind {
                behind,
                held,
                oldest,
            } => (
                Message::Behind {
                    leg: number,
                    behind,
                    held,
                    oldest_chunk: oldest,
                },
                Some(ResumeError::Behind { behind, held }),
            ),
            _ => (
                Message::Accept {
                    leg: number,
                    first_chunk: k,
                },
                None,
            ),
        };
        let prefix = Bytes::copy_from_slice(&self.key.seal(&prefix));
        if let Some(error) = behind {
            // Tell the reader, then stop: both sides fail with the same
            // reason. Until the relay confirms the reader got it: dropped
            // earlier, the request is cut off on its way.
            let _ = tokio::time::timeout(ATTEMPT, async {
                upload.sink.send(prefix).await?;
                upload.sink.finish().await?;
                upload.status.await
            })
            .await;
            return Err(Error::Resume(error));
        }
        if let Err(error) = upload.sink.send(prefix).await {
            tracing::debug!("{path}: leg {number} broke at once: {error}");
            return Ok(());
        }
        self.resumes += 1;
        let resent = self.replay.bytes_from(k);
        let since = broken_at
            .map(|at| format!(" {:.1} s after the break", at.elapsed().as_secs_f64()))
            .unwrap_or_default();
        tracing::warn!(
            "{}: resumed on leg {number} at {} (chunk {k}){since}; re-sending {resent} bytes ({})",
            self.config.stream_path(),
            human_size(plaintext),
            human_size(resent),
        );
        self.broken = None;
        self.ack_listener = listen_for_acks(
            &self.config,
            &self.key,
            number,
            &self.inbox_tx,
            &self.acked_tx,
        );
        self.leg = Some(Leg {
            number,
            body: upload.sink,
            status: upload.status,
            cursor: k,
            ended: false,
        });
        Ok(())
    }
}

/// The deadlines the legs watch.
#[derive(Debug, Clone, Copy)]
struct Deadlines {
    hello: Option<Instant>,
    broken: Option<Instant>,
    receipt: Option<Instant>,
    restart: Option<Instant>,
}

/// Waits for a message, the end of the current leg, or a deadline.
/// Cancel-safe.
async fn next_event(
    inbox: &mut mpsc::Receiver<Inbound>,
    status: Option<&mut UploadStatus>,
    deadlines: Deadlines,
) -> Event {
    let leg_ended = async {
        match status {
            Some(status) => status.await,
            None => std::future::pending().await,
        }
    };
    tokio::select! {
        inbound = inbox.recv() => Event::Inbound(inbound.expect("the legs hold a sender")),
        outcome = leg_ended => Event::LegEnded(outcome),
        () = sleep_until(deadlines.hello) => Event::HandshakeMissing,
        () = sleep_until(deadlines.broken) => Event::ResumeExpired,
        () = sleep_until(deadlines.receipt) => Event::ReceiptMissing,
        () = sleep_until(deadlines.restart) => Event::RestartDue,
    }
}

async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(deadline) => tokio::time::sleep_until(deadline).await,
        None => std::future::pending().await,
    }
}

/// Connects the writer's end of a leg (waiting up to [`ATTEMPT`] for the
/// reader) and starts its upload.
async fn connect_leg(
    config: &Config,
    path: &str,
    content_type: Option<&str>,
) -> Result<Upload, Error> {
    let api = config.api_client();
    let url = api
        .connect(path, ConnectMode::AwaitReader, Some(ATTEMPT))
        .await?;
    Ok(api.upload(&url, content_type)?)
}

fn listen_for_resume(
    config: &Config,
    key: &Arc<ControlKey>,
    leg: u32,
    inbox: &mpsc::Sender<Inbound>,
) -> Listener {
    listen(config, key, key.resume_path(leg), inbox, move |m| match m {
        Message::Resume { leg: asked, .. } if *asked == leg => Ok(()),
        Message::Resume { .. } => Err("a resume request of another leg (replayed)"),
        _ => Err("not a resume request"),
    })
}

/// Reads the acknowledgement stream of leg `leg` (the reader sends it as a
/// long stream of messages): the handshake (leg 0's first message) goes to
/// the inbox, each acknowledgement moves `acked` on. The stream is opened
/// again after an error (each attempt waits up to [`ATTEMPT`] for the
/// reader); it ends when the reader ends it (the stream was read whole).
fn listen_for_acks(
    data: &Config,
    key: &Arc<ControlKey>,
    leg: u32,
    inbox: &mpsc::Sender<Inbound>,
    acked: &Arc<watch::Sender<Acked>>,
) -> Listener {
    let (key, inbox, acked) = (key.clone(), inbox.clone(), acked.clone());
    let path = key.ack_path(leg);
    let config = side_config(data, path.clone());
    Listener(tokio::spawn(async move {
        let Ok(config) = config else {
            return;
        };
        let api = config.api_client();
        loop {
            let opened = attempt(&path, async {
                let url = api
                    .connect(&path, ConnectMode::AwaitWriter, Some(ATTEMPT))
                    .await?;
                Ok(api.download(&url).await?)
            });
            let Some(mut stream) = opened.await else {
                continue;
            };
            let mut bytes = [0u8; MESSAGE_LEN];
            loop {
                match stream.read_exact(&mut bytes).await {
                    Ok(_) => {}
                    // The reader ended it: it read the whole stream.
                    Err(error) if error.kind() == std::io::ErrorKind::UnexpectedEof => return,
                    Err(error) => {
                        tracing::debug!("{path}: {error}");
                        break;
                    }
                }
                let inbound = match key.open(&bytes) {
                    Ok(Message::Ack {
                        leg: acked_leg,
                        next_chunk,
                        ..
                    }) if acked_leg == leg => {
                        acked.send_modify(|acked| {
                            acked.next_chunk = acked.next_chunk.max(next_chunk);
                            acked.heard = Some(Instant::now());
                        });
                        continue;
                    }
                    Ok(Message::Hello) if leg == 0 => Inbound::Message(Message::Hello),
                    Ok(message @ Message::GiveUp { leg: given_up, .. }) if given_up == leg => {
                        Inbound::Message(message)
                    }
                    Ok(other) => Inbound::Refused(format!(
                        "{path}: {other:?} on the acknowledgements of leg {leg}"
                    )),
                    Err(error) => Inbound::Refused(format!("{path}: {error}")),
                };
                let refused = matches!(inbound, Inbound::Refused(_));
                if inbox.send(inbound).await.is_err() {
                    return;
                }
                if refused {
                    // Not our reader's stream: open it again.
                    break;
                }
            }
            tokio::time::sleep(RETRY_PAUSE).await;
        }
    }))
}

fn listen_for_receipt(
    config: &Config,
    key: &Arc<ControlKey>,
    inbox: &mpsc::Sender<Inbound>,
) -> Listener {
    listen(config, key, key.receipt_path(), inbox, |m| match m {
        Message::Receipt { .. } => Ok(()),
        _ => Err("not a receipt"),
    })
}

/// Reads one message from the side path `path` until one verifies and
/// `fits`, and hands it to the legs. Each attempt waits up to [`ATTEMPT`]
/// (a connection that died with the link is given up quickly); the task
/// ends with the legs.
fn listen(
    data: &Config,
    key: &Arc<ControlKey>,
    path: String,
    inbox: &mpsc::Sender<Inbound>,
    fits: impl Fn(&Message) -> Result<(), &'static str> + Send + 'static,
) -> Listener {
    let key = key.clone();
    let inbox = inbox.clone();
    let config = side_config(data, path.clone()).map(|mut config| {
        config.connect_timeout = Some(ATTEMPT);
        config
    });
    Listener(tokio::spawn(async move {
        let Ok(config) = config else {
            return;
        };
        loop {
            let received = attempt(&path, side_channel::receive(&config, MESSAGE_LEN));
            // Nobody sent (yet): ask again.
            let Some(bytes) = received.await else {
                continue;
            };
            let verdict = key
                .open(&bytes)
                .map_err(|e| e.to_string())
                .and_then(|message| fits(&message).map(|()| message).map_err(str::to_owned));
            let done = verdict.is_ok();
            let inbound = match verdict {
                Ok(message) => Inbound::Message(message),
                Err(reason) => Inbound::Refused(format!("{path}: {reason}")),
            };
            if inbox.send(inbound).await.is_err() || done {
                return;
            }
        }
    }))
}
